# SPDX-License-Identifier: GPL-2.0-or-later
#
# The ftrace entry code of a v3.17 x86-64 kernel built with -mfentry and
# without frame pointers (arch/x86/kernel/mcount_64.S before per-ops
# trampolines), rewritten for this model. Every traced function starts with
# a 5-byte call site; when enabled, it calls ftrace_caller or
# ftrace_regs_caller, and with more than one ops registered ftrace_call
# calls the list function, which walks them all.
#
# On entry (fentry): 0(%rsp) = return address into the traced function
# (= call site + 5), 8(%rsp) = the traced function's own return address.
# Built with -pg alone (CC_USING_FENTRY = 0) the call comes after the
# function's `push %rbp; mov %rsp,%rbp`: its own return address is 8(%rbp).
#
# There is nothing to copy yet: no ftrace_caller_end or *_op_ptr markers.
# function_trace_op already exists, for the single-ops fast path.
# Patch sites are emitted as explicit e8/e9 rel32 so the assembler cannot relax them.

# ftrace's text starts here and runs to __ftrace_text_end at the end of callbacks.S.
__ftrace_text_start:
# What the call sites call until ftrace_init() NOPs them: -mfentry's
# __fentry__ or -pg's mcount (a kernel has the one its compiler calls).
__fentry__:
	retq
mcount:
	retq

ftrace_caller:
	# A pt_regs-shaped save area (SS+8 bytes) for the argument registers.
	subq	$PT_FRAME_SIZE, %rsp
	movq	%rax, PT_RAX(%rsp)
	movq	%rcx, PT_RCX(%rsp)
	movq	%rdx, PT_RDX(%rsp)
	movq	%rsi, PT_RSI(%rsp)
	movq	%rdi, PT_RDI(%rsp)
	movq	%r8, PT_R8(%rsp)
	movq	%r9, PT_R9(%rsp)
	movq	PT_FRAME_SIZE(%rsp), %rdx
	movq	%rdx, PT_RIP(%rsp)
	# Third argument: the ftrace_ops (what ftrace_call calls when only one is registered).
	movq	function_trace_op(%rip), %rdx
	movq	PT_RIP(%rsp), %rdi
	subq	$5, %rdi			# ip = the call site
	# parent ip
.if CC_USING_FENTRY
	movq	PT_FRAME_SIZE+8(%rsp), %rsi
.else
	movq	8(%rbp), %rsi
.endif
	movq	$0, %rcx			# no pt_regs for ftrace_caller
ftrace_call:
	.byte	0xe8
	.long	ftrace_stub - ftrace_call - 5
	movq	PT_R9(%rsp), %r9
	movq	PT_R8(%rsp), %r8
	movq	PT_RDI(%rsp), %rdi
	movq	PT_RSI(%rsp), %rsi
	movq	PT_RDX(%rsp), %rdx
	movq	PT_RCX(%rsp), %rcx
	movq	PT_RAX(%rsp), %rax
	addq	$PT_FRAME_SIZE, %rsp
ftrace_return:
ftrace_graph_call:
	# Where both callers end: the graph tracer patches this jmp
	# to ftrace_graph_caller (below) while it is registered.
	.byte	0xe9
	.long	ftrace_stub - ftrace_graph_call - 5
ftrace_stub:
	retq

ftrace_regs_caller:
	# Save the flags first: the pushed word lands in the SS slot of pt_regs.
	pushfq
	subq	$PT_FRAME_SIZE-8, %rsp
	movq	%rax, PT_RAX(%rsp)
	movq	%rcx, PT_RCX(%rsp)
	movq	%rdx, PT_RDX(%rsp)
	movq	%rsi, PT_RSI(%rsp)
	movq	%rdi, PT_RDI(%rsp)
	movq	%r8, PT_R8(%rsp)
	movq	%r9, PT_R9(%rsp)
	movq	PT_FRAME_SIZE(%rsp), %rdx
	movq	%rdx, PT_RIP(%rsp)
	movq	function_trace_op(%rip), %rdx
	movq	PT_RIP(%rsp), %rdi
	subq	$5, %rdi
.if CC_USING_FENTRY
	movq	PT_FRAME_SIZE+8(%rsp), %rsi
.else
	movq	8(%rbp), %rsi
.endif
	# The rest of pt_regs, for callbacks that asked for SAVE_REGS.
	movq	%r15, PT_R15(%rsp)
	movq	%r14, PT_R14(%rsp)
	movq	%r13, PT_R13(%rsp)
	movq	%r12, PT_R12(%rsp)
	movq	%r11, PT_R11(%rsp)
	movq	%r10, PT_R10(%rsp)
	movq	%rbp, PT_RBP(%rsp)
	movq	%rbx, PT_RBX(%rsp)
	movq	PT_SS(%rsp), %rcx
	movq	%rcx, PT_EFLAGS(%rsp)
	movq	$__KERNEL_DS, %rcx
	movq	%rcx, PT_SS(%rsp)
	movq	$__KERNEL_CS, %rcx
	movq	%rcx, PT_CS(%rsp)
	leaq	PT_FRAME_SIZE+8(%rsp), %rcx	# the traced function's %rsp before its fentry call
	movq	%rcx, PT_RSP(%rsp)
	leaq	(%rsp), %rcx			# fourth argument: &pt_regs
ftrace_regs_call:
	.byte	0xe8
	.long	ftrace_stub - ftrace_regs_call - 5
	# Handlers may change flags and ip: put them where popfq and ret find them.
	movq	PT_EFLAGS(%rsp), %rax
	movq	%rax, PT_SS(%rsp)
	movq	PT_RIP(%rsp), %rax
	movq	%rax, PT_FRAME_SIZE(%rsp)
	movq	PT_R15(%rsp), %r15
	movq	PT_R14(%rsp), %r14
	movq	PT_R13(%rsp), %r13
	movq	PT_R12(%rsp), %r12
	movq	PT_R10(%rsp), %r10
	movq	PT_RBP(%rsp), %rbp
	movq	PT_RBX(%rsp), %rbx
	movq	PT_R9(%rsp), %r9
	movq	PT_R8(%rsp), %r8
	movq	PT_RDI(%rsp), %rdi
	movq	PT_RSI(%rsp), %rsi
	movq	PT_RDX(%rsp), %rdx
	movq	PT_RCX(%rsp), %rcx
	movq	PT_RAX(%rsp), %rax
	addq	$PT_FRAME_SIZE-8, %rsp
	popfq
	jmp	ftrace_return

# ftrace_graph_caller: entered by `jmp` from ftrace_graph_call with the
# traced function's frame as its fentry call left it: 0(%rsp) = the return
# into the traced function, 8(%rsp) = the traced function's own return
# address, the slot prepare_ftrace_return hooks.
ftrace_graph_caller:
	subq	$PT_FRAME_SIZE, %rsp
	movq	%rax, PT_RAX(%rsp)
	movq	%rcx, PT_RCX(%rsp)
	movq	%rdx, PT_RDX(%rsp)
	movq	%rsi, PT_RSI(%rsp)
	movq	%rdi, PT_RDI(%rsp)
	movq	%r8, PT_R8(%rsp)
	movq	%r9, PT_R9(%rsp)
	# parent: &the traced function's return address
.if CC_USING_FENTRY
	leaq	PT_FRAME_SIZE+8(%rsp), %rdi
	xorl	%edx, %edx			# no frame pointer with fentry
.else
	leaq	8(%rbp), %rdi
	movq	(%rbp), %rdx			# the frame pointer, for the graph tracer's test
.endif
	movq	PT_FRAME_SIZE(%rsp), %rsi
	subq	$5, %rsi			# self_addr: the call site
	call	prepare_ftrace_return
	movq	PT_R9(%rsp), %r9
	movq	PT_R8(%rsp), %r8
	movq	PT_RDI(%rsp), %rdi
	movq	PT_RSI(%rsp), %rsi
	movq	PT_RDX(%rsp), %rdx
	movq	PT_RCX(%rsp), %rcx
	movq	PT_RAX(%rsp), %rax
	addq	$PT_FRAME_SIZE, %rsp
	retq
