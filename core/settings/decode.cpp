#include "core/settings/decode.h"

#include "core/settings/cim_xml.h"
#include "core/settings/json.h"
#include "core/settings/mof.h"
#include "core/settings/schema.h"
#include "core/settings/value_text.h"

namespace vmrepl {

std::string_view format_name(Format f) {
  switch (f) {
    case Format::CimXml: return "CIM-XML";
    case Format::Mof: return "MOF";
    case Format::Json: return "JSON";
  }
  return "CIM-XML";
}

Result<Format> detect_format(std::string_view text) {
  VMREPL_RETURN_IF_ERROR(settings_internal::check_text(text, "the"));
  text = settings_internal::strip_bom(text);
  const std::size_t first = text.find_first_not_of(" \t\r\n");
  if (first != std::string_view::npos) {
    text.remove_prefix(first);
    if (text[0] == '<') return Format::CimXml;
    if (text[0] == '{') return Format::Json;
    // `instance` followed by a blank (or a comment) starts a MOF instance.
    if (text.size() > 8 && names_equal(text.substr(0, 8), "instance") &&
        std::string_view(" \t\r\n/").find(text[8]) != std::string_view::npos)
      return Format::Mof;
  }
  return Status::InvalidParameter("setting data is not CIM-XML, MOF or JSON (it starts with " +
                                  settings_internal::preview(text.substr(0, 20)) + ")");
}

Result<Instance> decode_instance(std::string_view text, std::string_view expected_class) {
  auto format = detect_format(text);
  if (!format) return format.status();
  switch (*format) {
    case Format::CimXml: return decode_cim_xml(text, expected_class);
    case Format::Mof: return decode_mof(text, expected_class);
    case Format::Json: return decode_json(text, expected_class);
  }
  return Status::InvalidParameter("setting data is not CIM-XML, MOF or JSON");
}

std::string encode_instance(const Instance& instance, Format format) {
  switch (format) {
    case Format::CimXml: return encode_cim_xml(instance);
    case Format::Mof: return encode_mof(instance);
    case Format::Json: return encode_json(instance);
  }
  return encode_cim_xml(instance);
}

}  // namespace vmrepl
