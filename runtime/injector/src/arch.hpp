// The per-architecture part of the injector: how to save and restore a thread's registers, how to
// read "which system call is it in", and how to set up a C call that returns into address 0.
//
// Only x86_64 is implemented (arch_x86_64.cpp). An aarch64 port implements the same functions with
// PTRACE_GETREGSET(NT_PRSTATUS) for user_pt_regs, NT_FPREGSET (and NT_ARM_SVE when present) as the
// extended state, NT_ARM_SYSTEM_CALL to read the syscall number and to set it to -1 for the hijacked
// call, arguments in x0..x7, the return address in x30 (set to 0), no red zone. See docs/ATTACH.md.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#if defined(__x86_64__)
#include <sys/user.h>
#endif

namespace hotd::injector::arch {

#if defined(__x86_64__)
using Registers = user_regs_struct;
inline constexpr uint64_t kRedZone = 128;
inline constexpr uint16_t kElfMachine = 62;  // EM_X86_64
#else
#error "hotd_injector supports x86_64 only for now (see runtime/injector/src/arch.hpp)"
#endif

// All return false with errno set on failure.
bool get_registers(pid_t tid, Registers& regs);
bool set_registers(pid_t tid, const Registers& regs);
// The FPU/vector state (x86: the whole XSAVE area, AVX-512 and AMX included).
bool get_extended_state(pid_t tid, std::vector<uint8_t>& state);
bool set_extended_state(pid_t tid, const std::vector<uint8_t>& state);

uint64_t instruction_pointer(const Registers& regs);
uint64_t stack_pointer(const Registers& regs);
uint64_t return_value(const Registers& regs);
// The system call the thread is stopped in or has just returned from, or -1 if it was stopped while
// running user code.
long current_syscall(const Registers& regs);

// Turns `regs` into a call of `function(args...)` with the stack pointer just below `frame_top`
// (16-byte aligned), returning to address 0 so the end of the call is a SIGSEGV at pc 0, and with
// syscall restart disabled (the kernel would otherwise rewind the pc of a thread stopped in an
// interrupted system call). Returns the stack address where a zero return address must be written,
// if the architecture passes it on the stack.
std::optional<uint64_t> setup_call(Registers& regs, uint64_t function, std::span<const uint64_t> args,
                                   uint64_t frame_top);

}  // namespace hotd::injector::arch
