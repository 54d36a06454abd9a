#include "model_description.hpp"

#include <sstream>

namespace hotd::testing {

std::string describe(const parser::Module& module) {
  std::ostringstream out;
  for (const parser::Definition& d : module.definitions) {
    out << parser::kind_name(d) << " " << d.qualname << " #" << d.occurrence << " acc=" << to_string(d.accessor)
        << " fm=" << to_string(d.field_model) << " span=" << d.span.start_byte << "-" << d.span.end_byte << " "
        << d.span.start.line << ":" << d.span.start.column << "-" << d.span.end.line << ":" << d.span.end.column
        << " header=" << d.header_line << " async=" << d.is_async << " gen=" << d.is_generator
        << " infn=" << d.in_function << " block=" << d.is_block << " doc=" << d.docstring.value_or("-")
        << " slots=" << d.binds_slots << " isdoc=" << d.is_docstring << " h=" << d.content_hash << "/"
        << d.layout_hash << "/" << d.header_hash << " parent=" << d.parent << " children=";
    for (const auto child : d.children) out << child << ",";
    out << " decorators=";
    for (const auto& decorator : d.decorators) out << decorator << ";";
    out << " binds=";
    for (const auto& name : d.binds) out << name << ";";
    out << " tparams=" << d.type_parameters;
    out << "\n";
  }
  out << "top=";
  for (const auto index : module.top_level) out << index << ",";
  out << "\nerrors=";
  for (const auto& error : module.errors) {
    out << error.start.line << ":" << error.start.column << " " << error.message << ";";
  }
  return out.str();
}

std::string first_difference(const parser::Module& left, const parser::Module& right) {
  const std::string a = describe(left);
  const std::string b = describe(right);
  if (a == b) return {};
  std::istringstream left_lines(a), right_lines(b);
  std::string l, r;
  int line = 0;
  while (std::getline(left_lines, l) && std::getline(right_lines, r) && l == r) ++line;
  return "at definition " + std::to_string(line) + "\n  left:  " + l + "\n  right: " + r;
}

}  // namespace hotd::testing
