#include "core/settings/mof.h"

#include <cstdio>
#include <optional>
#include <vector>

#include "core/settings/schema.h"
#include "core/settings/text_limits.h"
#include "core/settings/value_text.h"

namespace vmrepl {

namespace {

using namespace settings_internal;

constexpr std::string_view kFormat = "MOF";

struct Token {
  enum Kind : uint8_t { End, Identifier, String, Number, Punct };
  Kind kind = End;
  std::string_view raw;  // identifier or number text, the punctuation character
  std::string text;      // a string literal, unescaped
  std::size_t line = 1, column = 1;

  bool is_punct(char c) const { return kind == Punct && raw.size() == 1 && raw[0] == c; }
};

std::string describe(const Token& t) {
  switch (t.kind) {
    case Token::End: return "the end of the text";
    case Token::Identifier: return preview(t.raw);
    case Token::Number: return "the number " + preview(t.raw);
    case Token::String: return "a string";
    case Token::Punct: return "'" + std::string(t.raw) + "'";
  }
  return "a token";
}

bool is_ident_start(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; }
bool is_ident_char(char c) { return is_ident_start(c) || (c >= '0' && c <= '9'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

class Lexer {
 public:
  explicit Lexer(std::string_view src) : src_(src) {}

  Result<Token> next() {
    VMREPL_RETURN_IF_ERROR(skip_blanks());
    Token t;
    t.line = line_;
    t.column = pos_ - line_start_ + 1;
    if (pos_ >= src_.size()) return t;
    const char c = src_[pos_];
    const char c1 = pos_ + 1 < src_.size() ? src_[pos_ + 1] : '\0';
    if (is_ident_start(c)) {
      const std::size_t start = pos_;
      while (pos_ < src_.size() && is_ident_char(src_[pos_])) ++pos_;
      if (pos_ - start > kMaxIdentifierBytes)
        return error(t, "an identifier is longer than " + std::to_string(kMaxIdentifierBytes) + " bytes");
      t.kind = Token::Identifier;
      t.raw = src_.substr(start, pos_ - start);
      return t;
    }
    if (is_digit(c) || ((c == '-' || c == '+' || c == '.') && (is_digit(c1) || c1 == '.'))) {
      const std::size_t start = pos_++;
      while (pos_ < src_.size()) {
        const char d = src_[pos_];
        const char prev = src_[pos_ - 1];
        if (is_ident_char(d) || d == '.' || ((d == '+' || d == '-') && (prev == 'e' || prev == 'E'))) {
          ++pos_;
        } else {
          break;
        }
      }
      t.kind = Token::Number;
      t.raw = src_.substr(start, pos_ - start);
      return t;
    }
    if (c == '"') return string_literal(std::move(t));
    if (c == '{' || c == '}' || c == ';' || c == '=' || c == ',') {
      t.kind = Token::Punct;
      t.raw = src_.substr(pos_++, 1);
      return t;
    }
    if (c == '[') return error(t, "qualifiers are not supported in instance text");
    if (c == '$') return error(t, "aliases are not supported");
    if (c == '\'') return error(t, "char16 literals are not supported");
    return error(t, "unexpected character " + preview(src_.substr(pos_, 1)));
  }

  Status error(std::size_t line, std::size_t column, std::string_view detail) const {
    return Status::InvalidParameter(std::string(kFormat) + " line " + std::to_string(line) +
                                    ", column " + std::to_string(column) + ": " + std::string(detail));
  }
  Status error(const Token& t, std::string_view detail) const { return error(t.line, t.column, detail); }

 private:
  void newline_at(std::size_t i) {
    ++line_;
    line_start_ = i + 1;
  }

  Status skip_blanks() {
    while (pos_ < src_.size()) {
      const char c = src_[pos_];
      if (c == '\n') {
        newline_at(pos_++);
      } else if (c == ' ' || c == '\t' || c == '\r' || c == '\f') {
        ++pos_;
      } else if (c == '/' && pos_ + 1 < src_.size() && src_[pos_ + 1] == '/') {
        while (pos_ < src_.size() && src_[pos_] != '\n') ++pos_;
      } else if (c == '/' && pos_ + 1 < src_.size() && src_[pos_ + 1] == '*') {
        const std::size_t line = line_, column = pos_ - line_start_ + 1;
        const std::size_t end = src_.find("*/", pos_ + 2);
        if (end == std::string_view::npos) return error(line, column, "unterminated comment");
        for (std::size_t i = pos_; i < end; ++i)
          if (src_[i] == '\n') newline_at(i);
        pos_ = end + 2;
      } else {
        break;
      }
    }
    return Status::OK();
  }

  Result<Token> string_literal(Token t) {
    ++pos_;  // the opening quote
    std::string out;
    while (true) {
      if (pos_ >= src_.size() || src_[pos_] == '\n' || src_[pos_] == '\r')
        return error(t, "unterminated string literal");
      const char c = src_[pos_++];
      if (c == '"') break;
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos_ >= src_.size()) return error(t, "unterminated string literal");
      const char e = src_[pos_++];
      switch (e) {
        case 'b': out += '\b'; break;
        case 't': out += '\t'; break;
        case 'n': out += '\n'; break;
        case 'f': out += '\f'; break;
        case 'r': out += '\r'; break;
        case '"': out += '"'; break;
        case '\'': out += '\''; break;
        case '\\': out += '\\'; break;
        case 'x':
        case 'X': {
          uint32_t cp = 0;
          int n = 0;
          while (n < 4 && pos_ < src_.size() && hex_value(src_[pos_]) >= 0) {
            cp = cp * 16 + static_cast<uint32_t>(hex_value(src_[pos_++]));
            ++n;
          }
          if (n == 0) return error(t, "\\x needs 1 to 4 hexadecimal digits");
          if (cp == 0) return error(t, "\\x0 (NUL) is not allowed in a string");
          if (cp >= 0xD800 && cp <= 0xDFFF) return error(t, "\\x escape of a UTF-16 surrogate");
          append_utf8(out, cp);
          break;
        }
        default:
          return error(t, "unknown escape \\" + std::string(1, e) + " in a string literal");
      }
    }
    t.kind = Token::String;
    t.text = std::move(out);
    return t;
  }

  std::string_view src_;
  std::size_t pos_ = 0, line_ = 1, line_start_ = 0;
};

// A value as written, before the schema gives it a type.
struct MofScalar {
  enum Kind : uint8_t { Bool, Number, String };
  Kind kind = String;
  bool b = false;
  std::string text;
};
struct MofValue {
  bool null = false;
  bool array = false;
  std::vector<MofScalar> items;
};

class Parser {
 public:
  explicit Parser(std::string_view src) : lex_(src) {}

  Result<Instance> run(std::string_view expected_class) {
    VMREPL_RETURN_IF_ERROR(keyword("instance"));
    VMREPL_RETURN_IF_ERROR(keyword("of"));
    auto cls = take();
    if (!cls) return cls.status();
    if (cls->kind != Token::Identifier)
      return lex_.error(*cls, "expected a class name, found " + describe(*cls));
    auto schema = resolve_class(cls->raw, expected_class, kFormat);
    if (!schema) return schema.status();
    const ClassSchema& c = **schema;
    VMREPL_RETURN_IF_ERROR(punct('{', "after the class name"));

    Instance inst(c.name);
    while (true) {
      auto t = take();
      if (!t) return t.status();
      if (t->is_punct('}')) break;
      if (t->kind != Token::Identifier)
        return lex_.error(*t, "expected a property name or '}', found " + describe(*t));
      const std::string_view name = t->raw;
      const bool ignored = name.substr(0, 2) == "__";  // system properties
      const PropertySchema* p = nullptr;
      if (!ignored) {
        p = c.find(name);
        if (!p) return Status::InvalidParameter(c.name + " has no property " + preview(name));
        if (inst.has(p->name)) return bad_value(*p, "the property appears twice");
      }
      const std::string label = p ? p->name : std::string(name);
      VMREPL_RETURN_IF_ERROR(punct('=', "after " + label));
      auto v = value(label);
      if (!v) return v.status();
      VMREPL_RETURN_IF_ERROR(punct(';', "after the value of " + label));
      if (p) {
        auto prop = convert(*p, *v);
        if (!prop) return prop.status();
        inst.set(std::move(*prop));
      }
    }
    VMREPL_RETURN_IF_ERROR(punct(';', "after '}'"));
    auto end = take();
    if (!end) return end.status();
    if (end->kind != Token::End)
      return lex_.error(*end, "unexpected " + describe(*end) + " after the instance");
    return inst;
  }

 private:
  Result<Token> take() {
    if (peeked_) {
      Token t = std::move(*peeked_);
      peeked_.reset();
      return t;
    }
    return lex_.next();
  }
  Result<const Token*> peek() {
    if (!peeked_) {
      auto t = lex_.next();
      if (!t) return t.status();
      peeked_ = std::move(*t);
    }
    return &*peeked_;
  }

  Status keyword(std::string_view kw) {
    auto t = take();
    if (!t) return t.status();
    if (t->kind == Token::End) return lex_.error(*t, "the text ends early; expected '" + std::string(kw) + "'");
    if (t->kind != Token::Identifier || !names_equal(t->raw, kw))
      return lex_.error(*t, "expected '" + std::string(kw) + "', found " + describe(*t));
    return Status::OK();
  }

  Status punct(char c, std::string_view where) {
    auto t = take();
    if (!t) return t.status();
    if (t->is_punct(c)) return Status::OK();
    const std::string want = "expected '" + std::string(1, c) + "' " + std::string(where);
    if (t->kind == Token::End) return lex_.error(*t, "the text ends early; " + want);
    return lex_.error(*t, want + ", found " + describe(*t));
  }

  // TRUE, FALSE, a number, or adjacent string literals joined.
  Result<MofScalar> scalar(Token t, const std::string& label) {
    MofScalar s;
    switch (t.kind) {
      case Token::Identifier:
        if (names_equal(t.raw, "TRUE") || names_equal(t.raw, "FALSE")) {
          s.kind = MofScalar::Bool;
          s.b = names_equal(t.raw, "TRUE");
          return s;
        }
        if (names_equal(t.raw, "NULL")) return lex_.error(t, label + ": null array elements are not supported");
        return Status::IncorrectDataType(label + ": " + preview(t.raw) +
                                         " is not a value (TRUE, FALSE, NULL, a number or a quoted string)");
      case Token::Number:
        s.kind = MofScalar::Number;
        s.text = std::string(t.raw);
        return s;
      case Token::String: {
        s.kind = MofScalar::String;
        s.text = std::move(t.text);
        while (true) {
          auto next = peek();
          if (!next) return next.status();
          if ((*next)->kind != Token::String) break;
          s.text += (*next)->text;
          peeked_.reset();
        }
        return s;
      }
      case Token::End: return lex_.error(t, "the text ends early; expected the value of " + label);
      case Token::Punct:
        if (t.is_punct('{')) return lex_.error(t, label + ": nested arrays are not allowed");
        break;
    }
    return lex_.error(t, "expected the value of " + label + ", found " + describe(t));
  }

  Result<MofValue> value(const std::string& label) {
    auto t = take();
    if (!t) return t.status();
    MofValue v;
    if (t->kind == Token::Identifier && names_equal(t->raw, "NULL")) {
      v.null = true;
      return v;
    }
    if (!t->is_punct('{')) {
      auto s = scalar(std::move(*t), label);
      if (!s) return s.status();
      v.items.push_back(std::move(*s));
      return v;
    }
    v.array = true;
    auto first = peek();
    if (!first) return first.status();
    if ((*first)->is_punct('}')) {
      peeked_.reset();
      return v;
    }
    while (true) {
      auto item = take();
      if (!item) return item.status();
      if (v.items.size() == kMaxArrayElements)
        return Status::InvalidParameter(label + ": more than " + std::to_string(kMaxArrayElements) +
                                        " elements");
      auto s = scalar(std::move(*item), label);
      if (!s) return s.status();
      v.items.push_back(std::move(*s));
      auto sep = take();
      if (!sep) return sep.status();
      if (sep->is_punct('}')) break;
      if (!sep->is_punct(',')) {
        const std::string want = "expected ',' or '}' in the array of " + label;
        if (sep->kind == Token::End) return lex_.error(*sep, "the text ends early; " + want);
        return lex_.error(*sep, want + ", found " + describe(*sep));
      }
    }
    return v;
  }

  static Result<Scalar> convert_scalar(const PropertySchema& p, const MofScalar& s) {
    const std::string type(cim_type_name(p.type));
    if (p.type == CimType::Boolean) {
      if (s.kind != MofScalar::Bool)
        return bad_type(p, (s.kind == MofScalar::String ? std::string("a string") : preview(s.text)) +
                               " is not a boolean (TRUE or FALSE)");
      return Scalar{s.b};
    }
    if (cim_type_is_text(p.type)) {
      if (s.kind != MofScalar::String) return bad_type(p, "a " + type + " value must be a quoted string");
      Scalar v{s.text};
      VMREPL_RETURN_IF_ERROR(check_value(p, v));
      return v;
    }
    if (s.kind == MofScalar::String) return bad_type(p, "a quoted string is not a " + type);
    if (s.kind == MofScalar::Bool) return bad_type(p, "a boolean is not a " + type);
    if (p.type == CimType::Real64) return parse_real(p, s.text);
    return parse_integer(p, s.text, /*allow_hex=*/true);
  }

  static Result<Property> convert(const PropertySchema& p, const MofValue& v) {
    if (v.null) return make_property(p, std::nullopt);
    std::string shape(cim_type_name(p.type));
    if (v.array && !p.is_array) return bad_type(p, "an array was given for a scalar " + shape);
    if (!v.array && p.is_array) return bad_type(p, "a single value was given for an array (" + shape + "[])");
    std::vector<Scalar> values;
    values.reserve(v.items.size());
    for (const MofScalar& s : v.items) {
      auto x = convert_scalar(p, s);
      if (!x) return x.status();
      values.push_back(std::move(*x));
    }
    return make_property(p, std::move(values));
  }

  Lexer lex_;
  std::optional<Token> peeked_;
};

void append_string_literal(std::string& out, std::string_view s) {
  out += '"';
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '"': out += "\\\""; break;
      case '\b': out += "\\b"; break;
      case '\t': out += "\\t"; break;
      case '\n': out += "\\n"; break;
      case '\f': out += "\\f"; break;
      case '\r': out += "\\r"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\x%04X", static_cast<unsigned>(c));
          out += buf;
        } else {
          out += ch;
        }
    }
  }
  out += '"';
}

void append_literal(std::string& out, const Scalar& v) {
  if (const auto* s = std::get_if<std::string>(&v)) {
    append_string_literal(out, *s);
  } else {
    out += scalar_to_text(v);
  }
}

}  // namespace

std::string encode_mof(const Instance& instance) {
  std::string out = "instance of ";
  out += instance.class_name();
  out += "\n{\n";
  for (const Property& p : instance.properties()) {
    out += '\t';
    out += p.name;
    out += " = ";
    if (!p.values) {
      out += "NULL";
    } else if (!p.is_array && p.values->size() == 1) {
      append_literal(out, p.values->front());
    } else {
      out += '{';
      for (std::size_t i = 0; i < p.values->size(); ++i) {
        if (i) out += ", ";
        append_literal(out, (*p.values)[i]);
      }
      out += '}';
    }
    out += ";\n";
  }
  out += "};\n";
  return out;
}

Result<Instance> decode_mof(std::string_view text, std::string_view expected_class) {
  VMREPL_RETURN_IF_ERROR(check_text(text, kFormat));
  Parser parser(strip_bom(text));
  return parser.run(expected_class);
}

}  // namespace vmrepl
