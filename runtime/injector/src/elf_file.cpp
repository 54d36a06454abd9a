#include "elf_file.hpp"

#include <elf.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace hotd::injector {

std::optional<ElfFile> ElfFile::open_fd(int fd, std::string& error) {
  struct stat st {};
  if (fstat(fd, &st) != 0 || st.st_size < static_cast<off_t>(sizeof(Elf64_Ehdr))) {
    error = "not an ELF file (too small)";
    return std::nullopt;
  }
  void* map = mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
  if (map == MAP_FAILED) {
    error = std::string("mmap: ") + std::strerror(errno);
    return std::nullopt;
  }
  ElfFile elf(static_cast<const uint8_t*>(map), static_cast<size_t>(st.st_size));
  const auto* header = elf.at<Elf64_Ehdr>(0);
  if (std::memcmp(header->e_ident, ELFMAG, SELFMAG) != 0) {
    error = "not an ELF file";
    return std::nullopt;
  }
  if (header->e_ident[EI_CLASS] != ELFCLASS64) {
    error = "not a 64-bit ELF file";
    return std::nullopt;
  }
  if (!elf.at<Elf64_Phdr>(header->e_phoff, header->e_phnum) ||
      !elf.at<Elf64_Shdr>(header->e_shoff, header->e_shnum)) {
    error = "truncated ELF headers";
    return std::nullopt;
  }
  return elf;
}

ElfFile::ElfFile(ElfFile&& other) noexcept : data_(other.data_), size_(other.size_) {
  other.data_ = nullptr;
  other.size_ = 0;
}

ElfFile& ElfFile::operator=(ElfFile&& other) noexcept {
  std::swap(data_, other.data_);
  std::swap(size_, other.size_);
  return *this;
}

ElfFile::~ElfFile() {
  if (data_) munmap(const_cast<uint8_t*>(data_), size_);
}

template <typename T>
const T* ElfFile::at(uint64_t offset, uint64_t count) const {
  if (offset > size_ || count > (size_ - offset) / sizeof(T)) return nullptr;
  return reinterpret_cast<const T*>(data_ + offset);
}

uint16_t ElfFile::machine() const { return at<Elf64_Ehdr>(0)->e_machine; }

uint64_t ElfFile::first_load_address() const {
  const auto* header = at<Elf64_Ehdr>(0);
  const auto* phdrs = at<Elf64_Phdr>(header->e_phoff, header->e_phnum);
  uint64_t lowest = UINT64_MAX;
  for (int i = 0; i < header->e_phnum; ++i) {
    if (phdrs[i].p_type == PT_LOAD && phdrs[i].p_vaddr < lowest) lowest = phdrs[i].p_vaddr;
  }
  return lowest == UINT64_MAX ? 0 : (lowest & ~uint64_t{0xfff});
}

std::string_view ElfFile::section(std::string_view name) const {
  const auto* header = at<Elf64_Ehdr>(0);
  const auto* sections = at<Elf64_Shdr>(header->e_shoff, header->e_shnum);
  if (!sections || header->e_shstrndx >= header->e_shnum) return {};
  const Elf64_Shdr& names = sections[header->e_shstrndx];
  for (int i = 0; i < header->e_shnum; ++i) {
    const char* section_name = at<char>(names.sh_offset + sections[i].sh_name);
    if (!section_name || sections[i].sh_type == SHT_NOBITS) continue;
    size_t max = size_ - (names.sh_offset + sections[i].sh_name);
    if (std::string_view(section_name, strnlen(section_name, max)) != name) continue;
    const char* bytes = at<char>(sections[i].sh_offset, sections[i].sh_size);
    return bytes ? std::string_view(bytes, sections[i].sh_size) : std::string_view{};
  }
  return {};
}

namespace {

// The .dynsym/.dynstr/.gnu.version triple, found through the section headers (present in every
// distribution library; stripped files keep their dynamic sections).
struct DynamicTables {
  const Elf64_Sym* symbols = nullptr;
  size_t count = 0;
  const char* strings = nullptr;
  size_t strings_size = 0;
  const uint16_t* versions = nullptr;  // may be null
};

}  // namespace

std::optional<ElfFile::Symbol> ElfFile::dynamic_symbol(std::string_view name) const {
  const auto* header = at<Elf64_Ehdr>(0);
  const auto* sections = at<Elf64_Shdr>(header->e_shoff, header->e_shnum);
  std::optional<Symbol> hidden_match;
  for (int i = 0; i < header->e_shnum; ++i) {
    if (sections[i].sh_type != SHT_DYNSYM || sections[i].sh_link >= header->e_shnum) continue;
    DynamicTables tables;
    tables.count = sections[i].sh_size / sizeof(Elf64_Sym);
    tables.symbols = at<Elf64_Sym>(sections[i].sh_offset, tables.count);
    const Elf64_Shdr& strtab = sections[sections[i].sh_link];
    tables.strings = at<char>(strtab.sh_offset, strtab.sh_size);
    tables.strings_size = strtab.sh_size;
    for (int j = 0; j < header->e_shnum; ++j) {
      if (sections[j].sh_type == SHT_GNU_versym)
        tables.versions = at<uint16_t>(sections[j].sh_offset, tables.count);
    }
    if (!tables.symbols || !tables.strings) return std::nullopt;
    for (size_t k = 0; k < tables.count; ++k) {
      const Elf64_Sym& sym = tables.symbols[k];
      if (sym.st_shndx == SHN_UNDEF || sym.st_name >= tables.strings_size) continue;
      int type = ELF64_ST_TYPE(sym.st_info);
      if (type != STT_FUNC && type != STT_OBJECT && type != STT_GNU_IFUNC) continue;
      const char* sym_name = tables.strings + sym.st_name;
      if (std::string_view(sym_name, strnlen(sym_name, tables.strings_size - sym.st_name)) != name)
        continue;
      Symbol found{sym.st_value, sym.st_size};
      bool hidden = tables.versions && (tables.versions[k] & 0x8000);
      if (!hidden) return found;
      hidden_match = found;
    }
  }
  return hidden_match;
}

std::optional<std::string> ElfFile::symbol_containing(uint64_t address) const {
  const auto* header = at<Elf64_Ehdr>(0);
  const auto* sections = at<Elf64_Shdr>(header->e_shoff, header->e_shnum);
  for (int i = 0; i < header->e_shnum; ++i) {
    if (sections[i].sh_type != SHT_DYNSYM || sections[i].sh_link >= header->e_shnum) continue;
    size_t count = sections[i].sh_size / sizeof(Elf64_Sym);
    const auto* symbols = at<Elf64_Sym>(sections[i].sh_offset, count);
    const Elf64_Shdr& strtab = sections[sections[i].sh_link];
    const char* strings = at<char>(strtab.sh_offset, strtab.sh_size);
    if (!symbols || !strings) return std::nullopt;
    for (size_t k = 0; k < count; ++k) {
      const Elf64_Sym& sym = symbols[k];
      if (sym.st_shndx == SHN_UNDEF || ELF64_ST_TYPE(sym.st_info) != STT_FUNC) continue;
      if (address >= sym.st_value && address < sym.st_value + sym.st_size &&
          sym.st_name < strtab.sh_size) {
        return std::string(strings + sym.st_name, strnlen(strings + sym.st_name, strtab.sh_size - sym.st_name));
      }
    }
  }
  return std::nullopt;
}

std::optional<std::string_view> ElfFile::bytes_at(uint64_t address, uint64_t size) const {
  const auto* header = at<Elf64_Ehdr>(0);
  const auto* phdrs = at<Elf64_Phdr>(header->e_phoff, header->e_phnum);
  for (int i = 0; i < header->e_phnum; ++i) {
    const Elf64_Phdr& p = phdrs[i];
    if (p.p_type != PT_LOAD || address < p.p_vaddr || address + size > p.p_vaddr + p.p_filesz)
      continue;
    const char* bytes = at<char>(p.p_offset + (address - p.p_vaddr), size);
    if (bytes) return std::string_view(bytes, size);
  }
  return std::nullopt;
}

}  // namespace hotd::injector
