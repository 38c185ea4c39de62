# SPDX-License-Identifier: GPL-2.0-or-later
#
# The ftrace entry code of a v6.x x86-64 kernel (arch/x86/kernel/ftrace_64.S,
# -mfentry only: x86-64 dropped mcount call sites in v5.x), rewritten for this
# model without CALL_DEPTH_ACCOUNT, ENDBR and the return thunk.
#
# What changed since v3.18:
# - Both callers pass a pt_regs (ftrace_regs) as the fourth argument, and
#   ftrace_caller fills in regs->sp so the graph tracer can be an ops of its
#   own (ftrace_graph_func in fgraph.S): there is no ftrace_graph_call.
# - The copied part ends in a RET that is not copied: create_trampoline()
#   appends its own, so a trampoline returns straight to the traced function.
# - ftrace_regs_caller tests regs->orig_ax for a direct call (a BPF
#   trampoline); the jnz at ftrace_regs_caller_jmp is what create_trampoline()
#   turns into a 2-byte NOP, since a trampoline never serves direct calls.
#
# On entry (fentry): 0(%rsp) = return address into the traced function
# (= call site + 5), 8(%rsp) = the traced function's own return address.
# Patch sites are emitted as explicit e8 rel32 so the assembler cannot relax them.

# ftrace's text starts here and runs to __ftrace_text_end at the end of callbacks.S.
__ftrace_text_start:
__fentry__:
	retq

ftrace_caller:
	# save_mcount_regs: a pt_regs-shaped frame, and the first two arguments.
	subq	$PT_FRAME_SIZE, %rsp
	movq	%rax, PT_RAX(%rsp)
	movq	%rcx, PT_RCX(%rsp)
	movq	%rdx, PT_RDX(%rsp)
	movq	%rsi, PT_RSI(%rsp)
	movq	%rdi, PT_RDI(%rsp)
	movq	%r8, PT_R8(%rsp)
	movq	%r9, PT_R9(%rsp)
	movq	$0, PT_ORIG_RAX(%rsp)
	movq	%rbp, PT_RBP(%rsp)
	movq	PT_FRAME_SIZE+8(%rsp), %rsi	# parent ip
	movq	PT_FRAME_SIZE(%rsp), %rdi
	movq	%rdi, PT_RIP(%rsp)
	subq	$5, %rdi			# ip = the call site
	# The traced function's stack, skipping the return into it: regs->sp
	# is the slot of its own return address, which the graph tracer hooks.
	leaq	PT_FRAME_SIZE+8(%rsp), %rcx
	movq	%rcx, PT_RSP(%rsp)
ftrace_caller_op_ptr:
	# Third argument: the ftrace_ops. A trampoline loads its own ops here.
	movq	function_trace_op(%rip), %rdx
	leaq	(%rsp), %rcx			# fourth argument: ftrace_regs
	movq	$0, PT_CS(%rsp)			# only ftrace_regs_caller fills in CS
ftrace_call:
	.byte	0xe8
	.long	ftrace_stub - ftrace_call - 5
	# Handlers can change the RIP.
	movq	PT_RIP(%rsp), %rax
	movq	%rax, PT_FRAME_SIZE(%rsp)
	# restore_mcount_regs
	movq	PT_RBP(%rsp), %rbp
	movq	PT_R9(%rsp), %r9
	movq	PT_R8(%rsp), %r8
	movq	PT_RDI(%rsp), %rdi
	movq	PT_RSI(%rsp), %rsi
	movq	PT_RDX(%rsp), %rdx
	movq	PT_RCX(%rsp), %rcx
	movq	PT_RAX(%rsp), %rax
	addq	$PT_FRAME_SIZE, %rsp
	# The code up to here is copied into trampolines; each adds its own RET.
ftrace_caller_end:
	retq

ftrace_stub:
	retq

ftrace_regs_caller:
	# Save the flags before anything changes them; they sit above the frame.
	pushfq
	subq	$PT_FRAME_SIZE, %rsp
	movq	%rax, PT_RAX(%rsp)
	movq	%rcx, PT_RCX(%rsp)
	movq	%rdx, PT_RDX(%rsp)
	movq	%rsi, PT_RSI(%rsp)
	movq	%rdi, PT_RDI(%rsp)
	movq	%r8, PT_R8(%rsp)
	movq	%r9, PT_R9(%rsp)
	movq	$0, PT_ORIG_RAX(%rsp)
	movq	%rbp, PT_RBP(%rsp)
	movq	PT_FRAME_SIZE+16(%rsp), %rsi	# parent ip
	movq	PT_FRAME_SIZE+8(%rsp), %rdi
	movq	%rdi, PT_RIP(%rsp)
	subq	$5, %rdi			# ip = the call site
ftrace_regs_caller_op_ptr:
	movq	function_trace_op(%rip), %rdx
	# The rest of pt_regs.
	movq	%r15, PT_R15(%rsp)
	movq	%r14, PT_R14(%rsp)
	movq	%r13, PT_R13(%rsp)
	movq	%r12, PT_R12(%rsp)
	movq	%r11, PT_R11(%rsp)
	movq	%r10, PT_R10(%rsp)
	movq	%rbx, PT_RBX(%rsp)
	movq	PT_FRAME_SIZE(%rsp), %rcx
	movq	%rcx, PT_EFLAGS(%rsp)
	movq	$__KERNEL_DS, %rcx
	movq	%rcx, PT_SS(%rsp)
	movq	$__KERNEL_CS, %rcx
	movq	%rcx, PT_CS(%rsp)
	leaq	PT_FRAME_SIZE+16(%rsp), %rcx	# the stack, skipping the return address and flags
	movq	%rcx, PT_RSP(%rsp)
	leaq	(%rsp), %rcx			# fourth argument: &pt_regs
ftrace_regs_call:
	.byte	0xe8
	.long	ftrace_stub - ftrace_regs_call - 5
	# Handlers may change flags and ip: put them where popfq and ret find them.
	movq	PT_EFLAGS(%rsp), %rax
	movq	%rax, PT_FRAME_SIZE(%rsp)
	movq	PT_RIP(%rsp), %rax
	movq	%rax, PT_FRAME_SIZE+8(%rsp)
	movq	PT_R15(%rsp), %r15
	movq	PT_R14(%rsp), %r14
	movq	PT_R13(%rsp), %r13
	movq	PT_R12(%rsp), %r12
	movq	PT_R10(%rsp), %r10
	movq	PT_RBX(%rsp), %rbx
	movq	PT_ORIG_RAX(%rsp), %rax
	movq	%rax, PT_FRAME_SIZE-8(%rsp)
	# A handler that set regs->orig_ax asks for a direct call there
	# (arch_ftrace_set_direct_caller). Trampolines NOP this 2-byte jnz.
	testq	%rax, %rax
ftrace_regs_caller_jmp:
	.byte	0x75
	.byte	ftrace_regs_caller_direct - ftrace_regs_caller_jmp - 2
	movq	PT_RBP(%rsp), %rbp
	movq	PT_R9(%rsp), %r9
	movq	PT_R8(%rsp), %r8
	movq	PT_RDI(%rsp), %rdi
	movq	PT_RSI(%rsp), %rsi
	movq	PT_RDX(%rsp), %rdx
	movq	PT_RCX(%rsp), %rcx
	movq	PT_RAX(%rsp), %rax
	addq	$PT_FRAME_SIZE, %rsp
	popfq
	# The trampoline adds the return.
ftrace_regs_caller_end:
	retq
ftrace_regs_caller_direct:
	# Swap the flags with orig_ax: popfq takes the flags, ret goes to the direct callee.
	movq	PT_FRAME_SIZE(%rsp), %rdi
	movq	%rdi, PT_FRAME_SIZE-8(%rsp)
	movq	%rax, PT_FRAME_SIZE(%rsp)
	movq	PT_RBP(%rsp), %rbp
	movq	PT_R9(%rsp), %r9
	movq	PT_R8(%rsp), %r8
	movq	PT_RDI(%rsp), %rdi
	movq	PT_RSI(%rsp), %rsi
	movq	PT_RDX(%rsp), %rdx
	movq	PT_RCX(%rsp), %rcx
	movq	PT_RAX(%rsp), %rax
	addq	$PT_FRAME_SIZE-8, %rsp
	popfq
	retq
