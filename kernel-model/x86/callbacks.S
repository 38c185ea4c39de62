# SPDX-License-Identifier: GPL-2.0-or-later
#
# The built-in ftrace callbacks, all of type
#   void func(unsigned long ip, unsigned long parent_ip,
#             struct ftrace_ops *op, struct pt_regs *regs)
# Each one counts its invocation through op->private and appends what it
# received to the trace ring buffer, so the control plane can check from the
# guest's own records that every invocation got its own ops in %rdx.

# trace_log_event(ip %rdi, parent_ip %rsi, op %rdx, regs %rcx, kind %r8d,
#                 aux0 %r9, aux1 %r10): an internal helper, not a C function.
# One TE_SIZE-byte entry per event; trace_seq numbers events across all CPUs.
# The entry names the CPU and the current task's pid, as struct trace_entry does,
# and carries this CPU's trace clock (trace_clock_local()) read as it is written.
trace_log_event:
	movq	$1, %rax
	lock xaddq	%rax, trace_seq(%rip)
	movq	%rax, %r11
	andq	trace_mask(%rip), %r11
	imulq	$TE_SIZE, %r11, %r11
	addq	trace_buf(%rip), %r11
	movq	%rdi, TE_IP(%r11)
	movq	%rsi, TE_PARENT_IP(%r11)
	movq	%rdx, TE_OP(%r11)
	movq	%rcx, TE_REGS(%r11)
	movw	%r8w, TE_KIND(%r11)
	movq	%r9, TE_AUX0(%r11)
	movq	%r10, TE_AUX1(%r11)
	xorl	%r8d, %r8d
	movq	%gs:PERCPU_TRACE_CLOCK(%r8), %r9
	movq	%r9, TE_TS(%r11)
	movl	%gs:PERCPU_CURRENT_PID(%r8), %r9d
	movl	%gs:PERCPU_CPU_NUMBER(%r8), %r8d
	movw	%r8w, TE_CPU(%r11)
	movl	%r9d, TE_PID(%r11)
	# The sequence number goes in last: a reader sees a complete entry.
	incq	%rax
	movq	%rax, TE_SEQ(%r11)
	retq

# The function tracer's callback (kernel/trace/trace_functions.c).
function_trace_call:
	movq	OPS_PRIVATE(%rdx), %rax
	lock incq	STATS_INVOCATIONS(%rax)
	movl	$KIND_function_trace, %r8d
	xorl	%r9d, %r9d
	xorl	%r10d, %r10d
	jmp	trace_log_event

# A counting probe, as trace_selftest_ops() registers.
ftrace_count_probe:
	movq	OPS_PRIVATE(%rdx), %rax
	lock incq	STATS_INVOCATIONS(%rax)
	movl	$KIND_counter, %r8d
	xorl	%r9d, %r9d
	xorl	%r10d, %r10d
	jmp	trace_log_event

# A kprobe-on-ftrace handler: needs SAVE_REGS, records regs->ip and the
# traced function's first argument (regs->di) from the pt_regs it receives.
kprobe_ftrace_handler:
	movq	OPS_PRIVATE(%rdx), %rax
	lock incq	STATS_INVOCATIONS(%rax)
	movl	$KIND_kprobe_regs, %r8d
	xorl	%r9d, %r9d
	xorl	%r10d, %r10d
	testq	%rcx, %rcx
	jz	1f
	movq	PT_RIP(%rcx), %r9
	movq	PT_RDI(%rcx), %r10
1:	jmp	trace_log_event

# The end of ftrace's text (the era's entry code, ftrace_list.S, fgraph.S and this file, linked in that order).
__ftrace_text_end:
