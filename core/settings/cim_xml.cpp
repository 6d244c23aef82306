#include "core/settings/cim_xml.h"

#include <pugixml.hpp>

#include <cstdio>
#include <optional>
#include <vector>

#include "core/settings/schema.h"
#include "core/settings/text_limits.h"
#include "core/settings/value_text.h"

namespace vmrepl {

namespace {

using namespace settings_internal;

constexpr std::string_view kFormat = "CIM-XML";

void append_char_ref(std::string& out, unsigned char c) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "&#%u;", static_cast<unsigned>(c));
  out += buf;
}

// Element text: `"` and `'` need no escape there, so the spec's example stays byte-identical.
// CR and control characters become character references so that the parser's end-of-line
// normalisation cannot change them.
void escape_text(std::string& out, std::string_view s) {
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '\t':
      case '\n': out += ch; break;
      default:
        if (c < 0x20) append_char_ref(out, c);
        else out += ch;
    }
  }
}

// Attribute values: also `"`, and whitespace that attribute normalisation would turn into spaces.
void escape_attribute(std::string& out, std::string_view s) {
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default:
        if (c < 0x20) append_char_ref(out, c);
        else out += ch;
    }
  }
}

Status xml_error(std::string_view detail) {
  return Status::InvalidParameter(std::string(kFormat) + ": " + std::string(detail));
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

// Object paths travel as strings (IncludedDisks, ReplicationProvider) or as references; the
// text may spell either, and the value is kept with the schema's type.
bool is_path_type(CimType t) { return t == CimType::String || t == CimType::Reference; }
bool types_compatible(CimType text, CimType schema) {
  return text == schema || (is_path_type(text) && is_path_type(schema));
}

bool is_text(pugi::xml_node n) {
  return n.type() == pugi::node_pcdata || n.type() == pugi::node_cdata;
}
bool is_blank_text(pugi::xml_node n) {
  return n.type() == pugi::node_pcdata && trim(n.value()).empty();
}

std::string element_label(pugi::xml_node n) { return "<" + std::string(n.name()).substr(0, 40) + ">"; }

// pugixml decodes `&#0;` into a NUL that silently cuts the value short, so refuse it up front.
bool has_nul_char_ref(std::string_view t) {
  for (std::size_t i = t.find("&#"); i != std::string_view::npos; i = t.find("&#", i + 2)) {
    std::size_t j = i + 2;
    if (j < t.size() && (t[j] == 'x' || t[j] == 'X')) ++j;
    std::size_t k = j;
    while (k < t.size() && t[k] == '0') ++k;
    if (k > j && k < t.size() && t[k] == ';') return true;
  }
  return false;
}

// Checks nesting without recursion, so that a hostile depth costs one pass and no stack.
Status check_depth(const pugi::xml_document& doc) {
  std::size_t depth = 1;
  pugi::xml_node n = doc.first_child();
  while (n) {
    if (depth > kMaxXmlDepth)
      return xml_error("elements are nested deeper than " + std::to_string(kMaxXmlDepth) + " levels");
    if (pugi::xml_node c = n.first_child()) {
      n = c;
      ++depth;
      continue;
    }
    while (n && n != doc && !n.next_sibling()) {
      n = n.parent();
      --depth;
    }
    if (!n || n == doc) break;
    n = n.next_sibling();
  }
  return Status::OK();
}

// The attribute's value, nullopt when absent; a repeated attribute is ambiguous and refused.
Result<std::optional<std::string_view>> attribute(pugi::xml_node n, const char* name) {
  std::optional<std::string_view> found;
  for (pugi::xml_attribute a : n.attributes()) {
    if (std::string_view(a.name()) != name) continue;
    if (found) return xml_error(element_label(n) + " has two " + name + " attributes");
    found = std::string_view(a.value());
  }
  return found;
}

// Concatenated text and CDATA children; an element inside is an error.
Result<std::string> plain_text(pugi::xml_node n, const PropertySchema& p) {
  std::string out;
  for (pugi::xml_node c : n.children()) {
    if (is_text(c)) {
      out += c.value();
    } else if (c.type() == pugi::node_element) {
      return bad_value(p, "unexpected element " + element_label(c) + " inside " + element_label(n));
    }
  }
  return out;
}

// Element children other than QUALIFIER; text other than whitespace is an error.
Result<std::vector<pugi::xml_node>> elements(pugi::xml_node n, const PropertySchema& p) {
  std::vector<pugi::xml_node> out;
  for (pugi::xml_node c : n.children()) {
    if (c.type() == pugi::node_element) {
      if (std::string_view(c.name()) != "QUALIFIER") out.push_back(c);
    } else if (is_text(c) && !is_blank_text(c)) {
      return bad_value(p, "unexpected text inside " + element_label(n));
    }
  }
  return out;
}

Result<pugi::xml_node> only_child(pugi::xml_node n, const PropertySchema& p, std::string_view want) {
  auto kids = elements(n, p);
  if (!kids) return kids.status();
  if (kids->size() != 1 || std::string_view(kids->front().name()) != want)
    return bad_value(p, element_label(n) + " must hold exactly one <" + std::string(want) + ">");
  return kids->front();
}

// `root\virtualization\v2` from LOCALNAMESPACEPATH's NAMESPACE elements.
Result<std::string> local_namespace(pugi::xml_node n, const PropertySchema& p) {
  auto kids = elements(n, p);
  if (!kids) return kids.status();
  std::string out;
  for (pugi::xml_node c : *kids) {
    if (std::string_view(c.name()) != "NAMESPACE")
      return bad_value(p, "unexpected element " + element_label(c) + " in a namespace path");
    auto name = attribute(c, "NAME");
    if (!name) return name.status();
    if (!*name) return bad_value(p, "<NAMESPACE> has no NAME attribute");
    if (!out.empty()) out += '\\';
    out += **name;
  }
  if (out.empty()) return bad_value(p, "empty namespace path");
  return out;
}

// `\\HOST\root\virtualization\v2` from NAMESPACEPATH.
Result<std::string> namespace_path(pugi::xml_node n, const PropertySchema& p) {
  auto kids = elements(n, p);
  if (!kids) return kids.status();
  if (kids->size() != 2 || std::string_view((*kids)[0].name()) != "HOST" ||
      std::string_view((*kids)[1].name()) != "LOCALNAMESPACEPATH")
    return bad_value(p, "<NAMESPACEPATH> must hold <HOST> and <LOCALNAMESPACEPATH>");
  auto host = plain_text((*kids)[0], p);
  if (!host) return host.status();
  auto ns = local_namespace((*kids)[1], p);
  if (!ns) return ns.status();
  return "\\\\" + std::string(trim(*host)) + "\\" + *ns;
}

std::string quote_key(std::string_view v) {
  std::string out = "\"";
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    out += c;
  }
  out += '"';
  return out;
}

Result<std::string> key_value(pugi::xml_node kv, const PropertySchema& p) {
  auto type = attribute(kv, "VALUETYPE");
  if (!type) return type.status();
  auto text = plain_text(kv, p);
  if (!text) return text.status();
  if (!*type || **type == "string") return quote_key(*text);
  if (**type == "boolean" || **type == "numeric") return std::string(trim(*text));
  return bad_value(p, "unknown KEYVALUE VALUETYPE " + preview(**type));
}

// `Class.Key1="v",Key2=3` from INSTANCENAME, the WMI object path spelling.
Result<std::string> instance_name(pugi::xml_node n, const PropertySchema& p) {
  auto cls = attribute(n, "CLASSNAME");
  if (!cls) return cls.status();
  if (!*cls || (*cls)->empty()) return bad_value(p, "<INSTANCENAME> has no CLASSNAME attribute");
  std::string out(**cls);
  auto kids = elements(n, p);
  if (!kids) return kids.status();
  if (kids->empty()) return out + "=@";  // a singleton
  if (kids->size() == 1 && std::string_view(kids->front().name()) == "KEYVALUE") {
    auto v = key_value(kids->front(), p);
    if (!v) return v.status();
    return out + "=" + *v;
  }
  char sep = '.';
  for (pugi::xml_node kb : *kids) {
    if (std::string_view(kb.name()) != "KEYBINDING")
      return bad_value(p, "unexpected element " + element_label(kb) + " inside <INSTANCENAME>");
    auto name = attribute(kb, "NAME");
    if (!name) return name.status();
    if (!*name || (*name)->empty()) return bad_value(p, "<KEYBINDING> has no NAME attribute");
    auto kv = only_child(kb, p, "KEYVALUE");
    if (!kv) return bad_value(p, "<KEYBINDING> must hold one <KEYVALUE>; reference keys are not supported");
    auto v = key_value(*kv, p);
    if (!v) return v.status();
    out += sep;
    out += **name;
    out += '=';
    out += *v;
    sep = ',';
  }
  return out;
}

Result<std::string> class_name_of(pugi::xml_node n, const PropertySchema& p) {
  auto name = attribute(n, "NAME");
  if (!name) return name.status();
  if (!*name || (*name)->empty()) return bad_value(p, "<CLASSNAME> has no NAME attribute");
  return std::string(**name);
}

// A VALUE.REFERENCE as the object path string vmrepl keeps references in.
Result<std::string> reference_text(pugi::xml_node n, const PropertySchema& p) {
  if (!n.find_child([](pugi::xml_node c) { return c.type() == pugi::node_element; }))
    return plain_text(n, p);  // the path as text
  auto kids = elements(n, p);
  if (!kids) return kids.status();
  if (kids->size() != 1) return bad_value(p, "<VALUE.REFERENCE> must hold one path");
  pugi::xml_node path = kids->front();
  const std::string_view kind = path.name();
  auto parts = elements(path, p);
  if (!parts) return parts.status();
  auto part = [&](std::size_t i, std::string_view want) -> bool {
    return parts->size() == 2 && std::string_view((*parts)[i].name()) == want;
  };
  if (kind == "INSTANCENAME") return instance_name(path, p);
  if (kind == "CLASSNAME") return class_name_of(path, p);
  if (kind == "INSTANCEPATH" || kind == "CLASSPATH") {
    const bool inst = kind == "INSTANCEPATH";
    if (!part(0, "NAMESPACEPATH") || !part(1, inst ? "INSTANCENAME" : "CLASSNAME"))
      return bad_value(p, element_label(path) + " must hold <NAMESPACEPATH> and the name");
    auto ns = namespace_path((*parts)[0], p);
    if (!ns) return ns.status();
    auto name = inst ? instance_name((*parts)[1], p) : class_name_of((*parts)[1], p);
    if (!name) return name.status();
    return *ns + ":" + *name;
  }
  if (kind == "LOCALINSTANCEPATH" || kind == "LOCALCLASSPATH") {
    const bool inst = kind == "LOCALINSTANCEPATH";
    if (!part(0, "LOCALNAMESPACEPATH") || !part(1, inst ? "INSTANCENAME" : "CLASSNAME"))
      return bad_value(p, element_label(path) + " must hold <LOCALNAMESPACEPATH> and the name");
    auto ns = local_namespace((*parts)[0], p);
    if (!ns) return ns.status();
    auto name = inst ? instance_name((*parts)[1], p) : class_name_of((*parts)[1], p);
    if (!name) return name.status();
    return *ns + ":" + *name;
  }
  return bad_value(p, "unexpected element " + element_label(path) + " inside <VALUE.REFERENCE>");
}

// One value element (VALUE or VALUE.REFERENCE) read with the property's type.
Result<Scalar> read_value(pugi::xml_node v, const PropertySchema& p) {
  const std::string_view name = v.name();
  Result<std::string> text = Status::Unknown();
  if (name == "VALUE") {
    text = plain_text(v, p);
  } else if (name == "VALUE.REFERENCE") {
    if (!is_path_type(p.type))
      return bad_type(p, "a reference value was given for a " + std::string(cim_type_name(p.type)));
    text = reference_text(v, p);
  } else if (name == "VALUE.NULL") {
    return bad_value(p, "null array elements are not supported");
  } else if (name == "VALUE.ARRAY" || name == "VALUE.REFARRAY") {
    return bad_type(p, "an array value was given for a scalar " + std::string(cim_type_name(p.type)));
  } else {
    return bad_value(p, "unexpected element " + element_label(v));
  }
  if (!text) return text.status();
  std::string_view t = *text;
  // Whitespace means nothing around a number, boolean or datetime; strings keep theirs.
  if (!cim_type_is_text(p.type) || p.type == CimType::DateTime) t = trim(t);
  return scalar_from_text(p, t, /*allow_hex=*/false);
}

Status decode_property(pugi::xml_node node, const ClassSchema& schema, Instance& inst) {
  const std::string_view element = node.name();
  const bool as_array = element == "PROPERTY.ARRAY";
  const bool as_reference = element == "PROPERTY.REFERENCE";
  auto name = attribute(node, "NAME");
  if (!name) return name.status();
  if (!*name) return xml_error(element_label(node) + " has no NAME attribute");
  if ((*name)->substr(0, 2) == "__") return Status::OK();  // system properties: ignored
  const PropertySchema* ps = schema.find(**name);
  if (!ps) return Status::InvalidParameter(schema.name + " has no property " + preview(**name));
  const PropertySchema& p = *ps;
  if (inst.has(p.name)) return bad_value(p, "the property appears twice");

  std::string shape(cim_type_name(p.type));
  if (p.is_array) shape += "[]";
  if (as_array != p.is_array)
    return bad_type(p, "the class says " + shape + " but the text gives " + element_label(node));
  if (as_reference && !is_path_type(p.type))
    return bad_type(p, "the class says " + shape + " but the text gives <PROPERTY.REFERENCE>");
  if (!as_reference) {
    auto type = attribute(node, "TYPE");
    if (!type) return type.status();
    if (*type) {
      std::string lower((*type)->substr(0, 16));
      for (char& c : lower)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
      auto t = (*type)->size() <= 16 ? cim_type_from_name(lower) : std::nullopt;
      if (!t) return bad_type(p, "unknown TYPE " + preview(**type));
      if (!types_compatible(*t, p.type))
        return bad_type(p, "TYPE is " + preview(**type) + " but the class says " + shape);
    }
  }

  auto kids = elements(node, p);
  if (!kids) return kids.status();
  std::optional<std::vector<Scalar>> values;
  for (pugi::xml_node c : *kids) {
    if (values) return bad_value(p, element_label(node) + " holds more than one value");
    if (!as_array) {
      auto v = read_value(c, p);
      if (!v) return v.status();
      values = std::vector<Scalar>{std::move(*v)};
      continue;
    }
    const std::string_view kind = c.name();
    if (kind == "VALUE" || kind == "VALUE.REFERENCE")
      return bad_type(p, "the class says " + shape + " but the text gives a single " + element_label(c));
    if (kind != "VALUE.ARRAY" && kind != "VALUE.REFARRAY")
      return bad_value(p, "unexpected element " + element_label(c) + " inside " + element_label(node));
    auto items = elements(c, p);
    if (!items) return items.status();
    if (items->size() > kMaxArrayElements)
      return bad_value(p, "more than " + std::to_string(kMaxArrayElements) + " elements");
    std::vector<Scalar> vals;
    vals.reserve(items->size());
    for (pugi::xml_node item : *items) {
      if (std::string_view(item.name()) == "VALUE.ARRAY")
        return bad_value(p, "nested arrays are not allowed");
      auto v = read_value(item, p);
      if (!v) return v.status();
      vals.push_back(std::move(*v));
    }
    values = std::move(vals);
  }
  inst.set(make_property(p, std::move(values)));
  return Status::OK();
}

}  // namespace

std::string encode_cim_xml(const Instance& instance) {
  std::string out = "<INSTANCE CLASSNAME=\"";
  escape_attribute(out, instance.class_name());
  out += "\">\n";
  for (const Property& p : instance.properties()) {
    const char* element = p.is_array ? "PROPERTY.ARRAY" : "PROPERTY";
    out += '<';
    out += element;
    out += " NAME=\"";
    escape_attribute(out, p.name);
    out += "\" TYPE=\"";
    out += cim_type_name(p.type);
    out += "\">";
    if (p.values) {
      if (p.is_array) out += "<VALUE.ARRAY>";
      for (const Scalar& v : *p.values) {
        out += "<VALUE>";
        escape_text(out, scalar_to_text(v));
        out += "</VALUE>";
      }
      if (p.is_array) out += "</VALUE.ARRAY>";
    }
    out += "</";
    out += element;
    out += ">\n";
  }
  out += "</INSTANCE>";
  return out;
}

Result<Instance> decode_cim_xml(std::string_view text, std::string_view expected_class) {
  VMREPL_RETURN_IF_ERROR(check_text(text, kFormat));
  text = strip_bom(text);
  if (has_nul_char_ref(text)) return xml_error("a character reference to NUL (&#0;) is not allowed");

  pugi::xml_document doc;
  // parse_fragment keeps stray top-level text so that it can be refused below; ws_pcdata_single
  // keeps a whitespace-only VALUE (" ") while dropping the indentation between elements.
  const unsigned options = pugi::parse_default | pugi::parse_ws_pcdata_single | pugi::parse_fragment;
  const pugi::xml_parse_result r =
      doc.load_buffer(text.data(), text.size(), options, pugi::encoding_utf8);
  if (!r)
    return xml_error(std::string("not well-formed XML: ") + r.description() + " at offset " +
                     std::to_string(r.offset));
  VMREPL_RETURN_IF_ERROR(check_depth(doc));

  pugi::xml_node root;
  for (pugi::xml_node c : doc.children()) {
    if (c.type() == pugi::node_element) {
      if (root) return xml_error("more than one top-level element");
      root = c;
    } else if (is_text(c) && !is_blank_text(c)) {
      return xml_error("text outside the INSTANCE element");
    }
  }
  if (!root) return xml_error("no INSTANCE element");
  if (std::string_view(root.name()) != "INSTANCE")
    return xml_error("the top-level element is " + element_label(root) + ", expected <INSTANCE>");
  auto cls = attribute(root, "CLASSNAME");
  if (!cls) return cls.status();
  if (!*cls || (*cls)->empty()) return xml_error("<INSTANCE> has no CLASSNAME attribute");
  auto schema = resolve_class(**cls, expected_class, kFormat);
  if (!schema) return schema.status();

  Instance inst((*schema)->name);
  for (pugi::xml_node c : root.children()) {
    if (is_text(c)) {
      if (!is_blank_text(c)) return xml_error("unexpected text inside <INSTANCE>");
      continue;
    }
    if (c.type() != pugi::node_element) continue;
    const std::string_view name = c.name();
    if (name == "QUALIFIER") continue;
    if (name != "PROPERTY" && name != "PROPERTY.ARRAY" && name != "PROPERTY.REFERENCE")
      return xml_error("unexpected element " + element_label(c) + " inside <INSTANCE>");
    VMREPL_RETURN_IF_ERROR(decode_property(c, **schema, inst));
  }
  return inst;
}

}  // namespace vmrepl
