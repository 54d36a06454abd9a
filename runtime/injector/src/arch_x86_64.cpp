#include <elf.h>
#include <sys/ptrace.h>
#include <sys/uio.h>

#include <cerrno>

#include "arch.hpp"

namespace hotd::injector::arch {

bool get_registers(pid_t tid, Registers& regs) {
  return ptrace(PTRACE_GETREGS, tid, nullptr, &regs) == 0;
}

bool set_registers(pid_t tid, const Registers& regs) {
  return ptrace(PTRACE_SETREGS, tid, nullptr, &regs) == 0;
}

bool get_extended_state(pid_t tid, std::vector<uint8_t>& state) {
  // XSAVE areas are 1 to 3 KB with AVX-512 and 11 KB with AMX; grow if the kernel fills the buffer.
  for (size_t size = 16 * 1024; size <= 256 * 1024; size *= 4) {
    state.assign(size, 0);
    iovec io{state.data(), state.size()};
    if (ptrace(PTRACE_GETREGSET, tid, reinterpret_cast<void*>(NT_X86_XSTATE), &io) != 0) return false;
    if (io.iov_len < size) {
      state.resize(io.iov_len);
      return true;
    }
  }
  errno = E2BIG;
  return false;
}

bool set_extended_state(pid_t tid, const std::vector<uint8_t>& state) {
  iovec io{const_cast<uint8_t*>(state.data()), state.size()};
  return ptrace(PTRACE_SETREGSET, tid, reinterpret_cast<void*>(NT_X86_XSTATE), &io) == 0;
}

uint64_t instruction_pointer(const Registers& regs) { return regs.rip; }
uint64_t stack_pointer(const Registers& regs) { return regs.rsp; }
uint64_t return_value(const Registers& regs) { return regs.rax; }
long current_syscall(const Registers& regs) { return static_cast<long>(regs.orig_rax); }

std::optional<uint64_t> setup_call(Registers& regs, uint64_t function, std::span<const uint64_t> args,
                                   uint64_t frame_top) {
  unsigned long long* slots[] = {&regs.rdi, &regs.rsi, &regs.rdx, &regs.rcx, &regs.r8, &regs.r9};
  for (size_t i = 0; i < args.size() && i < std::size(slots); ++i) *slots[i] = args[i];
  // At function entry the SysV ABI wants (rsp + 8) % 16 == 0: the return address sits on an
  // aligned boundary.
  regs.rsp = (frame_top & ~uint64_t{15}) - 8;
  regs.rip = function;
  regs.rax = 0;                         // no vector registers used by a variadic callee
  regs.orig_rax = static_cast<unsigned long long>(-1);  // no syscall restart on resume
  regs.eflags &= ~((1ULL << 10) | (1ULL << 8));         // DF clear (ABI), no single-step
  return regs.rsp;
}

}  // namespace hotd::injector::arch
