// Hostile and broken setting data in all three formats: every case must fail cleanly with the
// right code (32773 InvalidParameter or 32776 IncorrectDataType) and a message naming the
// property when there is one. Run under ASan/UBSan this also shows none of them crashes.
#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <ostream>
#include <string>
#include <vector>

#include "core/settings/cim_xml.h"
#include "core/settings/decode.h"
#include "core/settings/json.h"
#include "core/settings/mof.h"

using namespace vmrepl;

namespace {

enum class Via { Auto, Xml, Mof, Json };

struct Case {
  std::string name;
  Via via;
  std::string text;
  uint32_t code;
  std::string needle;  // must appear in the message
  std::string expected_class;
};

std::ostream& operator<<(std::ostream& os, const Case& c) { return os << c.name; }

constexpr uint32_t kParam = 32773;  // InvalidParameter
constexpr uint32_t kType = 32776;   // IncorrectDataType

std::string repeat(std::string_view s, std::size_t n) {
  std::string out;
  out.reserve(s.size() * n);
  for (std::size_t i = 0; i < n; ++i) out += s;
  return out;
}

// CIM-XML, MOF and JSON instances of Msvm_ReplicationSettingData around the given body.
std::string X(std::string_view body) {
  return "<INSTANCE CLASSNAME=\"Msvm_ReplicationSettingData\">" + std::string(body) + "</INSTANCE>";
}
std::string P(std::string_view name, std::string_view type, std::string_view value) {
  return "<PROPERTY NAME=\"" + std::string(name) + "\" TYPE=\"" + std::string(type) + "\"><VALUE>" +
         std::string(value) + "</VALUE></PROPERTY>";
}
std::string M(std::string_view body) {
  return "instance of Msvm_ReplicationSettingData\n{\n" + std::string(body) + "};\n";
}
std::string J(std::string_view body) {
  return "{\"__CLASS\":\"Msvm_ReplicationSettingData\"," + std::string(body) + "}";
}

std::vector<Case> cases() {
  const std::string disks4097 = [] {
    std::string v;
    for (int i = 0; i < 4097; ++i) v += "<VALUE>d</VALUE>";
    return v;
  }();
  const std::string json4097 = [] {
    std::string v;
    for (int i = 0; i < 4097; ++i) v += i ? ",\"d\"" : "\"d\"";
    return v;
  }();
  return {
      // ---- any format ----
      {"empty input", Via::Auto, "", kParam, "empty", ""},
      {"whitespace only", Via::Auto, " \r\n\t ", kParam, "empty", ""},
      {"2 MiB input", Via::Auto, "<" + std::string(2u << 20, 'x'), kParam, "the limit is 1048576 bytes", ""},
      {"2 MiB JSON via decode_json", Via::Json, "{" + std::string(2u << 20, ' ') + "}", kParam, "limit", ""},
      {"embedded NUL", Via::Auto, std::string("<INSTANCE\0 CLASSNAME=\"x\"/>", 26), kParam, "NUL byte at offset 9", ""},
      {"not a known format", Via::Auto, "ReplicationInterval=300", kParam, "not CIM-XML, MOF or JSON", ""},
      {"JSON array at top level", Via::Auto, "[1, 2]", kParam, "not CIM-XML, MOF or JSON", ""},

      // ---- CIM-XML ----
      {"XML truncated in a value", Via::Auto, X(P("ReplicationInterval", "uint16", "300")).substr(0, 110), kParam,
       "not well-formed", ""},
      {"XML truncated after the open tag", Via::Auto, "<INSTANCE CLASSNAME=\"Msvm_ReplicationSettingData\">", kParam,
       "not well-formed", ""},
      {"XML mismatched tags", Via::Auto, X("<PROPERTY NAME=\"Caption\" TYPE=\"string\"><VALUE>a</PROPERTY></VALUE>"),
       kParam, "not well-formed", ""},
      {"XML wrong root", Via::Auto, "<CLASS NAME=\"Msvm_ReplicationSettingData\"/>", kParam, "expected <INSTANCE>", ""},
      {"XML no CLASSNAME", Via::Auto, "<INSTANCE></INSTANCE>", kParam, "no CLASSNAME", ""},
      {"XML unknown class", Via::Auto, "<INSTANCE CLASSNAME=\"Msvm_Nope\"></INSTANCE>", kParam, "unknown class 'Msvm_Nope'", ""},
      {"XML unknown property", Via::Auto, X(P("Frobnicate", "uint16", "1")), kParam,
       "Msvm_ReplicationSettingData has no property 'Frobnicate'", ""},
      {"XML property without NAME", Via::Auto, X("<PROPERTY TYPE=\"uint16\"><VALUE>1</VALUE></PROPERTY>"), kParam,
       "no NAME attribute", ""},
      {"XML TYPE disagrees with the schema", Via::Auto, X(P("ReplicationInterval", "string", "300")), kType,
       "ReplicationInterval: TYPE is 'string'", ""},
      {"XML unknown TYPE", Via::Auto, X(P("Caption", "char16", "a")), kType, "Caption: unknown TYPE 'char16'", ""},
      {"XML letters for uint16", Via::Auto, X(P("ReplicationInterval", "uint16", "abc")), kType,
       "ReplicationInterval: 'abc' is not a uint16 integer", ""},
      {"XML 70000 for uint16", Via::Auto, X(P("ReplicationInterval", "uint16", "70000")), kType,
       "ReplicationInterval: '70000' is out of range for uint16 (0..65535)", ""},
      {"XML 23-digit number", Via::Auto, X(P("ReplicationInterval", "uint16", "99999999999999999999999")), kType,
       "ReplicationInterval: '99999999999999999999999' is out of range", ""},
      {"XML 200-digit number for uint16", Via::Auto, X(P("RecoveryHistory", "uint16", std::string(200, '9'))), kType,
       "RecoveryHistory: a number of 200 characters is out of range for uint16", ""},
      {"XML negative for unsigned", Via::Auto, X(P("RecoveryHistory", "uint16", "-1")), kType,
       "RecoveryHistory: '-1' is negative; uint16 is unsigned", ""},
      {"XML decimal fraction for uint16", Via::Auto, X(P("RecoveryHistory", "uint16", "1.5")), kType,
       "RecoveryHistory", ""},
      {"XML hex is not decimal", Via::Auto, X(P("RecoveryHistory", "uint16", "0x10")), kType, "RecoveryHistory", ""},
      {"XML empty VALUE for uint16", Via::Auto, X(P("RecoveryHistory", "uint16", "")), kType, "RecoveryHistory", ""},
      {"XML bad boolean yes", Via::Auto, X(P("CompressionEnabled", "boolean", "yes")), kType,
       "CompressionEnabled: 'yes' is not a boolean (TRUE or FALSE)", ""},
      {"XML bad boolean 1", Via::Auto, X(P("CompressionEnabled", "boolean", "1")), kType, "CompressionEnabled", ""},
      {"XML bad datetime", Via::Auto, X(P("CreationTime", "datetime", "2026-09-25T10:15:00Z")), kType,
       "CreationTime: '2026-09-25T10:15:00Z' is not a CIM datetime", ""},
      {"XML datetime with month 13", Via::Auto, X(P("CreationTime", "datetime", "20261325101500.000000+000")), kType,
       "CreationTime", ""},
      {"XML interval where a point is required", Via::Auto, X(P("CreationTime", "datetime", "00000000183000.000000:000")),
       kType, "CreationTime: '00000000183000.000000:000' is an interval", ""},
      {"XML bad interval hours", Via::Auto,
       X(P("AutoResynchronizeIntervalStart", "datetime", "00000000253000.000000:000")), kType,
       "AutoResynchronizeIntervalStart", ""},
      {"XML PROPERTY.ARRAY for a scalar", Via::Auto,
       X("<PROPERTY.ARRAY NAME=\"RecoveryHistory\" TYPE=\"uint16\"><VALUE.ARRAY><VALUE>1</VALUE></VALUE.ARRAY></PROPERTY.ARRAY>"),
       kType, "RecoveryHistory: the class says uint16 but the text gives <PROPERTY.ARRAY>", ""},
      {"XML PROPERTY for an array", Via::Auto, X(P("IncludedDisks", "string", "d")), kType,
       "IncludedDisks: the class says string[] but the text gives <PROPERTY>", ""},
      {"XML VALUE.ARRAY inside a scalar PROPERTY", Via::Auto,
       X("<PROPERTY NAME=\"ReplicationInterval\" TYPE=\"uint16\"><VALUE.ARRAY><VALUE>300</VALUE></VALUE.ARRAY></PROPERTY>"),
       kType, "ReplicationInterval: an array value was given", ""},
      {"XML bare VALUE inside PROPERTY.ARRAY", Via::Auto,
       X("<PROPERTY.ARRAY NAME=\"IncludedDisks\" TYPE=\"string\"><VALUE>d</VALUE></PROPERTY.ARRAY>"), kType,
       "IncludedDisks", ""},
      {"XML two VALUEs", Via::Auto,
       X("<PROPERTY NAME=\"ReplicationInterval\" TYPE=\"uint16\"><VALUE>30</VALUE><VALUE>300</VALUE></PROPERTY>"), kParam,
       "ReplicationInterval: <PROPERTY> holds more than one value", ""},
      {"XML duplicate property", Via::Auto,
       X(P("ReplicationInterval", "uint16", "30") + P("replicationINTERVAL", "uint16", "300")), kParam,
       "ReplicationInterval: the property appears twice", ""},
      {"XML 10000 nested elements in a VALUE", Via::Auto,
       X("<PROPERTY NAME=\"Description\" TYPE=\"string\"><VALUE>" + repeat("<a>", 10000) + repeat("</a>", 10000) +
         "</VALUE></PROPERTY>"),
       kParam, "nested deeper than 16 levels", ""},
      {"XML 10000 nested INSTANCE elements", Via::Auto, repeat("<INSTANCE>", 10000) + repeat("</INSTANCE>", 10000),
       kParam, "nested deeper than 16 levels", ""},
      {"XML 10000 unclosed elements", Via::Auto, repeat("<a>", 10000), kParam, "not well-formed", ""},
      {"XML element inside VALUE", Via::Auto, X(P("ReplicationProvider", "string", "<b>x</b>")), kParam,
       "ReplicationProvider: unexpected element <b> inside <VALUE>", ""},
      {"XML thumbprint over string(128)", Via::Auto, X(P("CertificateThumbPrint", "string", std::string(129, 'A'))),
       kParam, "CertificateThumbPrint: the value has 129 characters; the limit is 128", ""},
      {"XML connection point over string(256)", Via::Auto,
       X(P("RecoveryConnectionPoint", "string", std::string(257, 'h'))), kParam,
       "RecoveryConnectionPoint: the value has 257 characters; the limit is 256", ""},
      {"XML caption over string(64)", Via::Auto, X(P("Caption", "string", std::string(65, 'c'))), kParam,
       "Caption: the value has 65 characters; the limit is 64", ""},
      {"XML character reference to NUL", Via::Auto, X(P("Caption", "string", "a&#0;b")), kParam, "NUL", ""},
      {"XML hex character reference to NUL", Via::Auto, X(P("Caption", "string", "a&#x000;b")), kParam, "NUL", ""},
      {"XML invalid UTF-8", Via::Auto, X(P("Caption", "string", "a\xFF")), kParam, "Caption: the value is not valid UTF-8",
       ""},
      {"XML surrogate character reference", Via::Auto, X(P("Caption", "string", "&#xD800;")), kParam,
       "Caption: the value is not valid UTF-8", ""},
      {"XML two top-level elements", Via::Auto, X("") + X(""), kParam, "more than one top-level element", ""},
      {"XML text after the instance", Via::Auto, X("") + "trailing", kParam, "text outside the INSTANCE element", ""},
      {"XML text inside INSTANCE", Via::Auto, X("stray"), kParam, "unexpected text inside <INSTANCE>", ""},
      {"XML unexpected element inside INSTANCE", Via::Auto, X("<METHOD NAME=\"x\"/>"), kParam,
       "unexpected element <METHOD> inside <INSTANCE>", ""},
      {"XML 4097 array elements", Via::Auto,
       X("<PROPERTY.ARRAY NAME=\"IncludedDisks\" TYPE=\"string\"><VALUE.ARRAY>" + disks4097 +
         "</VALUE.ARRAY></PROPERTY.ARRAY>"),
       kParam, "IncludedDisks: more than 4096 elements", ""},
      {"XML null array element", Via::Auto,
       X("<PROPERTY.ARRAY NAME=\"IncludedDisks\" TYPE=\"string\"><VALUE.ARRAY><VALUE>a</VALUE><VALUE.NULL/>"
         "</VALUE.ARRAY></PROPERTY.ARRAY>"),
       kParam, "IncludedDisks: null array elements are not supported", ""},
      {"XML reference for a uint16", Via::Auto,
       X("<PROPERTY.REFERENCE NAME=\"RecoveryHistory\"><VALUE.REFERENCE>x</VALUE.REFERENCE></PROPERTY.REFERENCE>"), kType,
       "RecoveryHistory", ""},
      {"XML reference key that is a reference", Via::Auto,
       X("<PROPERTY.REFERENCE NAME=\"ReplicationProvider\"><VALUE.REFERENCE><INSTANCENAME CLASSNAME=\"A\">"
         "<KEYBINDING NAME=\"K\"><VALUE.REFERENCE>x</VALUE.REFERENCE></KEYBINDING></INSTANCENAME>"
         "</VALUE.REFERENCE></PROPERTY.REFERENCE>"),
       kParam, "ReplicationProvider: <KEYBINDING> must hold one <KEYVALUE>", ""},
      {"XML repeated NAME attribute", Via::Auto,
       X("<PROPERTY NAME=\"Caption\" NAME=\"Description\" TYPE=\"string\"><VALUE>a</VALUE></PROPERTY>"), kParam,
       "two NAME attributes", ""},
      {"XML of another class than expected", Via::Auto,
       "<INSTANCE CLASSNAME=\"Msvm_ReplicationServiceSettingData\"></INSTANCE>", kParam,
       "setting data is an instance of 'Msvm_ReplicationServiceSettingData', expected 'Msvm_ReplicationSettingData'",
       "Msvm_ReplicationSettingData"},

      // ---- MOF ----
      {"MOF truncated inside the body", Via::Auto, "instance of Msvm_ReplicationSettingData\n{\n\tReplicationInterval = 300",
       kParam, "the text ends early; expected ';' after the value of ReplicationInterval", ""},
      {"MOF truncated after 'instance of'", Via::Auto, "instance of ", kParam, "expected a class name", ""},
      {"MOF missing the closing semicolon", Via::Auto, "instance of Msvm_ReplicationSettingData\n{\n}", kParam,
       "expected ';' after '}'", ""},
      {"MOF unterminated string", Via::Auto, M("\tCaption = \"abc;\n"), kParam, "line 3, column 12: unterminated string literal", ""},
      {"MOF string cut by the end", Via::Auto, "instance of Msvm_ReplicationSettingData\n{\n\tCaption = \"abc\\", kParam,
       "unterminated string literal", ""},
      {"MOF unterminated comment", Via::Auto, M("\t/* never closed\n"), kParam, "unterminated comment", ""},
      {"MOF unknown escape", Via::Auto, M("\tCaption = \"a\\qb\";\n"), kParam, "unknown escape \\q", ""},
      {"MOF NUL escape", Via::Auto, M("\tCaption = \"a\\x0000b\";\n"), kParam, "\\x0 (NUL) is not allowed", ""},
      {"MOF quoted number for uint16", Via::Auto, M("\tReplicationInterval = \"300\";\n"), kType,
       "ReplicationInterval: a quoted string is not a uint16", ""},
      {"MOF bare number for a string", Via::Auto, M("\tCaption = 42;\n"), kType,
       "Caption: a string value must be a quoted string", ""},
      {"MOF bad boolean", Via::Auto, M("\tCompressionEnabled = yes;\n"), kType,
       "CompressionEnabled: 'yes' is not a value", ""},
      {"MOF number for a boolean", Via::Auto, M("\tCompressionEnabled = 1;\n"), kType,
       "CompressionEnabled: '1' is not a boolean", ""},
      {"MOF 23-digit number", Via::Auto, M("\tReplicationInterval = 99999999999999999999999;\n"), kType,
       "ReplicationInterval: '99999999999999999999999' is out of range for uint16", ""},
      {"MOF 300-digit number", Via::Auto, M("\tReplicationInterval = " + std::string(300, '7') + ";\n"), kType,
       "ReplicationInterval: a number of 300 characters is out of range", ""},
      {"MOF negative for unsigned", Via::Auto, M("\tRecoveryHistory = -3;\n"), kType,
       "RecoveryHistory: '-3' is negative", ""},
      {"MOF array for a scalar", Via::Auto, M("\tRecoveryHistory = {1, 2};\n"), kType,
       "RecoveryHistory: an array was given for a scalar uint16", ""},
      {"MOF scalar for an array", Via::Auto, M("\tIncludedDisks = \"d\";\n"), kType,
       "IncludedDisks: a single value was given for an array (string[])", ""},
      {"MOF nested array", Via::Auto, M("\tIncludedDisks = {{\"d\"}};\n"), kParam, "IncludedDisks: nested arrays", ""},
      {"MOF NULL array element", Via::Auto, M("\tIncludedDisks = {\"a\", NULL};\n"), kParam,
       "IncludedDisks: null array elements are not supported", ""},
      {"MOF unterminated array", Via::Auto, "instance of Msvm_ReplicationSettingData\n{\n\tIncludedDisks = {\"a\" ",
       kParam, "the text ends early; expected ',' or '}' in the array of IncludedDisks", ""},
      {"MOF bad datetime", Via::Auto, M("\tCreationTime = \"yesterday\";\n"), kType,
       "CreationTime: 'yesterday' is not a CIM datetime", ""},
      {"MOF unknown property", Via::Auto, M("\tNope = 1;\n"), kParam, "Msvm_ReplicationSettingData has no property 'Nope'", ""},
      {"MOF unknown class", Via::Auto, "instance of Msvm_Nope\n{\n};\n", kParam, "unknown class 'Msvm_Nope'", ""},
      {"MOF duplicate property", Via::Auto, M("\tRecoveryHistory = 1;\n\tRECOVERYHISTORY = 2;\n"), kParam,
       "RecoveryHistory: the property appears twice", ""},
      {"MOF missing '='", Via::Auto, M("\tRecoveryHistory 1;\n"), kParam, "expected '=' after RecoveryHistory", ""},
      {"MOF trailing text", Via::Auto, M("") + "instance of X {};", kParam, "after the instance", ""},
      {"MOF identifier too long", Via::Auto, M("\t" + std::string(300, 'P') + " = 1;\n"), kParam,
       "identifier is longer than 256 bytes", ""},
      {"MOF qualifier", Via::Auto, M("\t[key] InstanceID = \"x\";\n"), kParam, "qualifiers are not supported", ""},
      {"MOF alias", Via::Auto, "instance of Msvm_ReplicationSettingData as $a\n{\n};\n", kParam,
       "expected '{' after the class name", ""},
      {"MOF stray character", Via::Auto, M("\tRecoveryHistory = 1 @;\n"), kParam, "unexpected character '@'", ""},
      {"MOF string over string(128)", Via::Auto, M("\tCertificateThumbPrint = \"" + std::string(130, 'a') + "\";\n"),
       kParam, "CertificateThumbPrint: the value has 130 characters", ""},
      {"MOF 4097 array elements", Via::Auto, M("\tIncludedDisks = {" + repeat("\"d\", ", 4096) + "\"d\"};\n"), kParam,
       "IncludedDisks: more than 4096 elements", ""},

      // ---- JSON ----
      {"JSON truncated", Via::Auto, J("\"ReplicationInterval\": 3").substr(0, 60), kParam, "JSON: not well-formed", ""},
      {"JSON trailing garbage", Via::Auto, J("\"RecoveryHistory\": 1") + " x", kParam, "JSON: not well-formed", ""},
      {"JSON string for uint16", Via::Auto, J("\"ReplicationInterval\": \"300\""), kType,
       "ReplicationInterval: a JSON string is not a uint16", ""},
      {"JSON fraction for uint16", Via::Auto, J("\"ReplicationInterval\": 1.5"), kType,
       "ReplicationInterval: '1.5' is not an integer (uint16)", ""},
      {"JSON 1.0 for uint16", Via::Auto, J("\"ReplicationInterval\": 1.0"), kType, "ReplicationInterval", ""},
      {"JSON negative for unsigned", Via::Auto, J("\"RecoveryHistory\": -1"), kType,
       "RecoveryHistory: -1 is negative; uint16 is unsigned", ""},
      {"JSON 70000 for uint16", Via::Auto, J("\"RecoveryHistory\": 70000"), kType,
       "RecoveryHistory: 70000 is out of range for uint16", ""},
      {"JSON 23-digit number", Via::Auto, J("\"ReplicationInterval\": 99999999999999999999999"), kType,
       "ReplicationInterval: '99999999999999999999999' is out of range for uint16", ""},
      {"JSON 400-digit number", Via::Auto, J("\"ReplicationInterval\": " + std::string(400, '9')), kType,
       "ReplicationInterval", ""},
      {"JSON 1e400", Via::Auto, J("\"ReplicationInterval\": 1e400"), kType, "ReplicationInterval", ""},
      {"JSON string for a boolean", Via::Auto, J("\"CompressionEnabled\": \"TRUE\""), kType,
       "CompressionEnabled: a JSON string is not a boolean", ""},
      {"JSON number for a boolean", Via::Auto, J("\"CompressionEnabled\": 1"), kType,
       "CompressionEnabled: 1 is not a boolean", ""},
      {"JSON number for a string", Via::Auto, J("\"Caption\": 5"), kType, "Caption: 5 is not a JSON string", ""},
      {"JSON array for a scalar", Via::Auto, J("\"RecoveryHistory\": [1]"), kType,
       "RecoveryHistory: a JSON array was given for a scalar uint16", ""},
      {"JSON scalar for an array", Via::Auto, J("\"IncludedDisks\": \"d\""), kType,
       "IncludedDisks: a JSON string was given for an array (string[])", ""},
      {"JSON object for a scalar", Via::Auto, J("\"ReplicationProvider\": {\"Name\": \"x\"}"), kType,
       "ReplicationProvider: a JSON object is not a valid value", ""},
      {"JSON nested array", Via::Auto, J("\"IncludedDisks\": [[\"d\"]]"), kType, "IncludedDisks: nested arrays", ""},
      {"JSON null array element", Via::Auto, J("\"IncludedDisks\": [\"d\", null]"), kParam,
       "IncludedDisks: null array elements are not supported", ""},
      {"JSON wrong element type", Via::Auto, J("\"IncludedDisks\": [\"d\", 3]"), kType, "IncludedDisks: 3 is not a JSON string",
       ""},
      {"JSON bad datetime", Via::Auto, J("\"AutoResynchronizeIntervalEnd\": \"06:00\""), kType,
       "AutoResynchronizeIntervalEnd", ""},
      {"JSON NUL escape in a string", Via::Auto, J("\"Caption\": \"a\\u0000b\""), kParam,
       "Caption: the value contains a NUL character", ""},
      {"JSON unknown property", Via::Auto, J("\"Nope\": 1"), kParam, "Msvm_ReplicationSettingData has no property 'Nope'", ""},
      {"JSON duplicate key", Via::Auto, J("\"RecoveryHistory\": 1, \"recoveryhistory\": 2"), kParam,
       "RecoveryHistory: the property appears twice", ""},
      {"JSON unknown class", Via::Auto, "{\"__CLASS\": \"Msvm_Nope\"}", kParam, "unknown class 'Msvm_Nope'", ""},
      {"JSON __CLASS not a string", Via::Auto, "{\"__CLASS\": 5}", kParam, "__CLASS must be a string", ""},
      {"JSON __CLASS twice", Via::Auto, J("\"__CLASS\": \"Msvm_ReplicationSettingData\""), kParam, "__CLASS appears twice", ""},
      {"JSON no class at all", Via::Auto, "{\"RecoveryHistory\": 1}", kParam, "names no class and none is expected", ""},
      {"JSON deep nesting under a system key", Via::Auto, J("\"__x\": " + repeat("[", 100) + repeat("]", 100)), kParam,
       "nesting deeper than 32 levels", ""},
      {"JSON 10000 nested arrays", Via::Auto, J("\"IncludedDisks\": " + repeat("[", 10000) + repeat("]", 10000)), kParam,
       "nesting deeper than 32 levels", ""},
      {"JSON 4097 array elements", Via::Auto, J("\"IncludedDisks\": [" + json4097 + "]"), kParam,
       "IncludedDisks: more than 4096 elements", ""},
      {"JSON invalid UTF-8", Via::Auto, J("\"Caption\": \"\xC3\""), kParam, "JSON: not well-formed", ""},
      {"JSON of another class than expected", Via::Auto, "{\"__CLASS\": \"Msvm_ReplicationServiceSettingData\"}", kParam,
       "'Msvm_ReplicationServiceSettingData', expected 'Msvm_ReplicationSettingData'", "Msvm_ReplicationSettingData"},
      {"JSON array via decode_json", Via::Json, "[{\"__CLASS\": \"Msvm_ReplicationSettingData\"}]", kParam,
       "must be an object, not a JSON array", ""},
      {"JSON string via decode_json", Via::Json, "\"Msvm_ReplicationSettingData\"", kParam, "must be an object", ""},
      {"JSON number via decode_json", Via::Json, "42", kParam, "must be an object", ""},
      {"MOF text via decode_cim_xml", Via::Xml, M(""), kParam, "CIM-XML: text outside the INSTANCE element", ""},
      {"XML text via decode_mof", Via::Mof, X(""), kParam, "MOF line 1, column 1: unexpected character '<'", ""},
  };
}

Result<Instance> run(const Case& c) {
  switch (c.via) {
    case Via::Xml: return decode_cim_xml(c.text, c.expected_class);
    case Via::Mof: return decode_mof(c.text, c.expected_class);
    case Via::Json: return decode_json(c.text, c.expected_class);
    case Via::Auto: break;
  }
  return decode_instance(c.text, c.expected_class);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(malformed_tests)

BOOST_AUTO_TEST_CASE(the_table_is_large) { BOOST_TEST(cases().size() >= 50u); }

BOOST_DATA_TEST_CASE(malformed_input_fails_cleanly, boost::unit_test::data::make(cases()), c) {
  auto r = run(c);
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.status().number() == c.code, c.name << ": " << r.status().ToString());
  BOOST_TEST(r.status().message().find(c.needle) != std::string::npos,
             c.name << ": '" << c.needle << "' not in '" << r.status().message() << "'");
  BOOST_TEST(r.status().message().size() < 400u, "messages stay short whatever the input");
}

BOOST_AUTO_TEST_SUITE_END()
