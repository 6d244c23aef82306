// Test data shared by the settings suites: the spec's §11 example verbatim, a realistic fetched
// instance, and fully populated instances of each class with awkward strings.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/model/instance.h"
#include "core/settings/schema.h"

namespace vmrepl::test {

// Spec §11, copied verbatim (its IncludedDisks value has doubled backslashes).
extern const std::string_view kSpecExample;
// The IncludedDisks value of kSpecExample, as the bytes it must decode to.
extern const std::string_view kSpecExampleDisk;

// A Msvm_ReplicationSettingData as a WMI fetch serialises it: CRLF line ends, an XML
// declaration, `__*` system properties (with __DERIVATION as an array), CLASSORIGIN and
// PROPAGATED attributes, a QUALIFIER, and the inherited unused members.
extern const std::string_view kFetchedInstance;

// A string exercising every escape of the three formats: XML specials, quotes, backslashes,
// tab, newline, CR, a control character, non-ASCII UTF-8, leading and trailing spaces.
extern const std::string kAwkward;

// Every property of the class set to a valid, non-default value (some null, one empty array,
// one empty string), in the schema's order.
Instance full_replication_setting_data();
Instance full_service_setting_data();
Instance full_authorization_setting_data();
Instance full_instance(std::string_view class_name);

// A valid sample value for a property: maxima for integers, kAwkward for strings, a datetime
// of the property's form, two elements for arrays.
Property sample_property(const PropertySchema& p);

}  // namespace vmrepl::test
