// CPython's compiler for the daemon's checker (python_syntax_check.cpp), built as a module of its own
// that links libpython and is loaded only by the checker's thread: linked into `hotd` itself, libpython
// cost every command about 5 ms of loading. The only unit that includes Python.h.
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "python_compiler.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <tuple>
#include <utility>

namespace {


// An owned reference, released at the end of its scope.
class Reference {
 public:
  explicit Reference(PyObject* object) : object_(object) {}
  ~Reference() { Py_XDECREF(object_); }
  Reference(const Reference&) = delete;
  Reference& operator=(const Reference&) = delete;
  PyObject* get() const { return object_; }
  explicit operator bool() const { return object_ != nullptr; }

 private:
  PyObject* object_;
};

// Starts the interpreter on the calling thread, which keeps the GIL from then on. Returns why it could
// not start, or nullopt.
std::optional<std::string> start_interpreter(const char* program_name) {
  PyConfig config;
  // Isolated: no environment variables (PYTHONPATH, PYTHONHOME of whatever shell started the
  // daemon), no site, no signal handlers (the daemon owns SIGINT and SIGTERM).
  PyConfig_InitIsolatedConfig(&config);
  config.install_signal_handlers = 0;
  config.site_import = 0;
  config.write_bytecode = 0;
  config.pathconfig_warnings = 0;
  // The interpreter hotd was built against finds its standard library, not a python3 first on PATH.
  PyStatus status = PyConfig_SetBytesString(&config, &config.program_name, program_name);
  // compile() warns about some valid code (invalid escapes, `is` with a literal): not our business,
  // and it would write to the daemon's log.
  if (!PyStatus_Exception(status)) status = PyWideStringList_Append(&config.warnoptions, L"ignore");
  if (!PyStatus_Exception(status)) status = Py_InitializeFromConfig(&config);
  PyConfig_Clear(&config);
  if (PyStatus_Exception(status)) {
    return std::string(status.func ? status.func : "Py_InitializeFromConfig") + ": " +
           (status.err_msg ? status.err_msg : "exit status " + std::to_string(status.exitcode));
  }
  return std::nullopt;
}

std::string text_of(PyObject* object) {
  Reference text(object ? PyObject_Str(object) : nullptr);
  const char* utf8 = text ? PyUnicode_AsUTF8(text.get()) : nullptr;
  if (!utf8) PyErr_Clear();
  return utf8 ? utf8 : "";
}

// An int attribute of a SyntaxError, or 0 when it is None, absent or not positive.
std::uint32_t positive_attribute(PyObject* object, const char* name) {
  Reference value(PyObject_GetAttrString(object, name));
  if (!value || !PyLong_Check(value.get())) {
    PyErr_Clear();
    return 0;
  }
  const long number = PyLong_AsLong(value.get());
  if (number == -1 && PyErr_Occurred()) PyErr_Clear();
  return number > 0 ? static_cast<std::uint32_t>(std::min(number, 0x7FFFFFFFL)) : 0;
}

// 1-based (line, code point column) of the first NUL byte: CPython 3.11 refuses such a text with a
// ValueError that has no position.
std::pair<std::uint32_t, std::uint32_t> position_of_nul(const std::string& text) {
  const std::size_t nul = text.find('\0');
  const std::size_t newline = text.rfind('\n', nul);
  const std::size_t line_start = newline == std::string::npos ? 0 : newline + 1;
  const auto line = 1 + std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(nul), '\n');
  // Code points: every byte but UTF-8 continuation bytes starts one.
  const auto column = 1 + std::count_if(text.begin() + static_cast<std::ptrdiff_t>(line_start),
                                        text.begin() + static_cast<std::ptrdiff_t>(nul),
                                        [](char byte) { return (static_cast<unsigned char>(byte) & 0xC0) != 0x80; });
  return {static_cast<std::uint32_t>(line), static_cast<std::uint32_t>(column)};
}

// What to hand compile(): a str when the text is UTF-8, as editors send it, so that Python's columns
// count code points (for bytes, 3.11 counts bytes in some errors and code points in others). Other
// texts go as bytes, which Python decodes as an import would (a PEP 263 coding cookie, else its error
// for non-UTF-8). A new reference.
PyObject* source_object(const std::string& text) {
  const auto size = static_cast<Py_ssize_t>(text.size());
  if (PyObject* unicode = PyUnicode_DecodeUTF8(text.data(), size, "strict")) return unicode;
  PyErr_Clear();
  return PyBytes_FromStringAndSize(text.data(), size);
}

// compile(text, "", "exec", dont_inherit=True) with the GIL held: the text is compiled, never run. No
// file name: for an error, CPython reads the error's line from the named file when it exists, and the
// file on disk may differ from the text (an editor's buffer), which shifts the column.
// Copies as much of `text` as fits, always terminated.
template <std::size_t N>
void copy_text(char (&to)[N], const std::string& text) {
  const std::size_t size = std::min(text.size(), N - 1);
  std::memcpy(to, text.data(), size);
  to[size] = '\0';
}

int compile_text(const std::string& text, HotdPythonError& error) {
  Reference source(source_object(text));
  PyObject* compile = PyDict_GetItemString(PyEval_GetBuiltins(), "compile");  // borrowed
  if (!source || !compile) {
    PyErr_Clear();
    copy_text(error.message, "the interpreter could not prepare the check");
    return -1;
  }
  Reference code(PyObject_CallFunction(compile, "OssiO", source.get(), "", "exec", 0, Py_True));
  if (code) return 0;

  PyObject *type = nullptr, *value = nullptr, *traceback = nullptr;
  PyErr_Fetch(&type, &value, &traceback);
  PyErr_NormalizeException(&type, &value, &traceback);
  Reference owned_type(type), owned_value(value), owned_traceback(traceback);
  copy_text(error.type, type ? reinterpret_cast<PyTypeObject*>(type)->tp_name : "Error");
  error.line = error.column = 1;
  error.end_line = error.end_column = 0;
  if (value && PyErr_GivenExceptionMatches(value, PyExc_SyntaxError)) {
    Reference message(PyObject_GetAttrString(value, "msg"));
    if (!message) PyErr_Clear();
    copy_text(error.message, text_of(message.get()));
    error.line = std::max(positive_attribute(value, "lineno"), 1u);
    error.column = std::max(positive_attribute(value, "offset"), 1u);
    error.end_line = positive_attribute(value, "end_lineno");
    error.end_column = positive_attribute(value, "end_offset");
  } else {
    copy_text(error.message, text_of(value));
    if (text.find('\0') != std::string::npos) std::tie(error.line, error.column) = position_of_nul(text);
  }
  return 1;
}

}  // namespace

extern "C" {

HOTD_PYTHON_EXPORT int hotd_python_start(const char* program_name, char* why, size_t why_size) {
  const std::optional<std::string> failure = start_interpreter(program_name);
  if (!failure) return 0;
  std::snprintf(why, why_size, "%s", failure->c_str());
  return -1;
}

HOTD_PYTHON_EXPORT int hotd_python_compile(const char* text, size_t size, HotdPythonError* error) {
  return compile_text(std::string(text, size), *error);
}

HOTD_PYTHON_EXPORT void hotd_python_finalize(void) { Py_FinalizeEx(); }

}  // extern "C"
