# SPDX-License-Identifier: GPL-2.0-or-later
#
# The function graph tracer's data plane on x86-64, shared by every era:
# prepare_ftrace_return and ftrace_graph_func (arch/x86/kernel/ftrace.c), the
# return stack of the current task (kernel/trace/trace_functions_graph.c),
# return_to_handler, and the function_graph tracer's entry and return
# callbacks. How the tracer is reached is the era's: v3.x jumps from the
# shared `ftrace_graph_call` to ftrace_graph_caller (in the era's
# mcount_64.S); v6 calls ftrace_graph_func as an ops callback.

# u64 trace_clock_local(): this CPU's guest instruction clock (one tick per
# guest instruction, kept by the machine while KernelConfig.instructionClock
# is on). Every tracer that stamps events reads its clock here.
# Clobbers nothing but %rax.
trace_clock_local:
	xorl	%eax, %eax
	movq	%gs:PERCPU_TRACE_CLOCK(%rax), %rax
	retq

# int ftrace_graph_entry_stub(func %rdi, depth %rsi): trace nothing.
ftrace_graph_entry_stub:
	xorl	%eax, %eax
	retq

# int ftrace_graph_entry_test(func %rdi, depth %rsi): with other ops
# registered, ftrace_graph_call is reached from sites the graph ops does
# not trace: ask its hashes first (v3.18 tests global_ops the same way).
ftrace_graph_entry_test:
	pushq	%r12
	pushq	%r13
	subq	$8, %rsp
	movq	%rdi, %r12
	movq	%rsi, %r13
	movq	fgraph_ops(%rip), %rdi
	movq	%r12, %rsi
	xorl	%edx, %edx
	call	ftrace_ops_test
	testl	%eax, %eax
	jz	1f
	movq	%r12, %rdi
	movq	%r13, %rsi
	call	*__ftrace_graph_entry(%rip)
1:	addq	$8, %rsp
	popq	%r13
	popq	%r12
	retq

# void ftrace_graph_func(ip %rdi, parent_ip %rsi, op %rdx, regs %rcx): the
# modern kernels' way in (arch/x86/kernel/ftrace.c since v5.11): the graph
# tracer is an ops of its own whose callback hooks the return address
# through regs->sp, the slot of the traced function's return address. No
# ftrace_graph_call is patched then.
ftrace_graph_func:
	testq	%rcx, %rcx
	jz	1f
	movq	%rdi, %rsi			# self_addr: the call site
	movq	PT_RSP(%rcx), %rdi		# parent: &the return address
	xorl	%edx, %edx
	call	prepare_ftrace_return
1:	retq

# void prepare_ftrace_return(unsigned long *parent %rdi, self_addr %rsi,
#                            frame_pointer %rdx): hook the return address.
prepare_ftrace_return:
	pushq	%rbx
	pushq	%r12
	pushq	%r13
	pushq	%r14
	pushq	%r15
	movq	%rdi, %rbx			# parent
	movq	%rsi, %r12			# self_addr
	cmpq	$0, kill_ftrace_graph(%rip)	# ftrace_graph_is_dead()
	jne	.Lpfr_out
	movq	(%rbx), %r14			# old = *parent
	leaq	return_to_handler(%rip), %rax
	movq	%rax, (%rbx)			# *parent = return_hooker
	movq	%r14, %rdi
	movq	%r12, %rsi
	movq	%rbx, %rdx
	call	ftrace_push_return_trace	# -> depth, or -1 (EBUSY) in %rax
	cmpq	$-1, %rax
	je	.Lpfr_restore
	movq	%r12, %rdi			# trace.func
	movq	%rax, %rsi			# trace.depth
	call	*ftrace_graph_entry(%rip)
	testl	%eax, %eax
	jnz	.Lpfr_out
	# Not traced after all: take the entry back off the return stack.
	xorl	%eax, %eax
	movq	%gs:PERCPU_CURRENT_TASK(%rax), %rax
	decq	TASK_CURR_RET_STACK(%rax)
.Lpfr_restore:
	movq	%r14, (%rbx)
.Lpfr_out:
	popq	%r15
	popq	%r14
	popq	%r13
	popq	%r12
	popq	%rbx
	retq

# long ftrace_push_return_trace(ret %rdi, func %rsi, retp %rdx) -> the new
# depth (curr_ret_stack, negative inside a set_graph_notrace function), or
# -1 when the entry cannot be pushed. Clobbers %rax, %rcx, %rdx, %r8-%r11.
ftrace_push_return_trace:
	xorl	%eax, %eax
	movq	%gs:PERCPU_CURRENT_TASK(%rax), %r8
	testq	%r8, %r8
	jz	.Lpush_busy
	cmpq	$0, TASK_RET_STACK(%r8)
	je	.Lpush_busy
	movq	TASK_CURR_RET_STACK(%r8), %rcx
	cmpq	$FTRACE_RETFUNC_DEPTH-1, %rcx
	jne	1f
	lock incq	TASK_TRACE_OVERRUN(%r8)
	jmp	.Lpush_busy
1:	cmpq	$-1, %rcx
	jl	.Lpush_busy
	movq	%rdi, %r9
	movq	%rdx, %r10
	call	trace_clock_local
	movq	%rax, %r11			# calltime
	movq	TASK_CURR_RET_STACK(%r8), %rcx
	incq	%rcx				# index = ++curr_ret_stack
	movq	%rcx, TASK_CURR_RET_STACK(%r8)
	movq	ftrace_graph_notrace_hash(%rip), %rdi
	testq	%rdi, %rdi
	jz	2f
	pushq	%rcx
	pushq	%rsi
	pushq	%r8
	call	ftrace_lookup_ip		# clobbers %rax, %rcx, %rdx
	popq	%r8
	popq	%rsi
	popq	%rcx
	testl	%eax, %eax
	jz	2f
	subq	$FTRACE_NOTRACE_DEPTH, TASK_CURR_RET_STACK(%r8)
2:	imulq	$RET_STACK_SIZE, %rcx, %rax
	addq	TASK_RET_STACK(%r8), %rax
	movq	%r9, RET_STACK_RET(%rax)
	movq	%rsi, RET_STACK_FUNC(%rax)
	movq	%r11, RET_STACK_CALLTIME(%rax)
	movq	$0, RET_STACK_SUBTIME(%rax)
	movq	$0, RET_STACK_FP(%rax)
	movq	%r10, RET_STACK_RETP(%rax)
	movq	TASK_CURR_RET_STACK(%r8), %rax	# *depth = curr_ret_stack
	retq
.Lpush_busy:
	movq	$-1, %rax
	retq

# return_to_handler: where a hooked function returns. Keep its return
# values, find where it really returns, and go there.
return_to_handler:
	subq	$24, %rsp
	movq	%rax, (%rsp)
	movq	%rdx, 8(%rsp)
	xorl	%edi, %edi			# no frame pointer with fentry
	call	ftrace_return_to_handler
	movq	%rax, %rdi
	movq	8(%rsp), %rdx
	movq	(%rsp), %rax
	addq	$24, %rsp
	jmp	*%rdi

# unsigned long ftrace_return_to_handler(frame_pointer %rdi): pop the
# current task's return stack, report the return, give the real address.
ftrace_return_to_handler:
	pushq	%rbx
	pushq	%r12
	pushq	%r13
	pushq	%r14
	pushq	%r15
	xorl	%eax, %eax
	movq	%gs:PERCPU_CURRENT_TASK(%rax), %rbx
	movq	TASK_CURR_RET_STACK(%rbx), %rcx	# ftrace_pop_return_trace()
	testq	%rcx, %rcx
	jns	1f
	addq	$FTRACE_NOTRACE_DEPTH, %rcx
1:	testq	%rcx, %rcx
	js	.Lrth_bad
	cmpq	$FTRACE_RETFUNC_DEPTH, %rcx
	jge	.Lrth_bad
	movq	%rcx, %r15			# trace.depth
	imulq	$RET_STACK_SIZE, %rcx, %rax
	addq	TASK_RET_STACK(%rbx), %rax
	movq	RET_STACK_RET(%rax), %r12	# ret
	movq	RET_STACK_FUNC(%rax), %r13	# trace.func
	movq	RET_STACK_CALLTIME(%rax), %r14	# trace.calltime
	call	trace_clock_local		# trace.rettime
	movq	%rax, %r8
	decq	TASK_CURR_RET_STACK(%rbx)
	cmpq	$-1, TASK_CURR_RET_STACK(%rbx)
	jge	2f
	# Leaving a set_graph_notrace function: recover the index, report nothing.
	addq	$FTRACE_NOTRACE_DEPTH, TASK_CURR_RET_STACK(%rbx)
	jmp	3f
2:	movq	%r13, %rdi			# ftrace_graph_return(&trace)
	movq	%r15, %rsi
	movq	%r14, %rdx
	movq	%r8, %rcx
	movq	%r12, %r8
	call	*ftrace_graph_return(%rip)
3:	testq	%r12, %r12
	jz	.Lrth_bad
	movq	%r12, %rax
	jmp	.Lrth_out
.Lrth_bad:
	# A return with nothing on the return stack: stop the graph tracer
	# for good and go nowhere useful (the kernel goes to panic()).
	movq	$1, kill_ftrace_graph(%rip)
	leaq	ftrace_graph_panic(%rip), %rax
.Lrth_out:
	popq	%r15
	popq	%r14
	popq	%r13
	popq	%r12
	popq	%rbx
	retq

# Where a lost return ends up: a trap, never a silent wrong return.
ftrace_graph_panic:
	ud2

# int trace_graph_entry(func %rdi, depth %rsi): the function_graph tracer's
# entry callback. A set_graph_notrace function is kept on the return stack
# (its push made the depth negative, so nothing below it is pushed) but not
# recorded; it is asked first, as the kernels after the fix for notrace
# with a negative depth do. Otherwise traced when nested in a
# set_graph_function function (or when that file is empty), not deeper than
# max_graph_depth.
trace_graph_entry:
	movq	ftrace_graph_notrace_hash(%rip), %rax
	testq	%rax, %rax
	jz	1f
	pushq	%rdi
	pushq	%rsi
	subq	$8, %rsp
	movq	%rdi, %rsi
	movq	%rax, %rdi
	call	ftrace_lookup_ip
	addq	$8, %rsp
	popq	%rsi
	popq	%rdi
	testl	%eax, %eax
	jnz	.Ltge_yes
1:	testq	%rsi, %rsi
	js	.Ltge_no
	jnz	2f
	# Depth 0: only the functions of set_graph_function start a graph.
	movq	ftrace_graph_hash(%rip), %rax
	testq	%rax, %rax
	jz	2f
	cmpq	$0, HASH_COUNT(%rax)
	je	2f
	pushq	%rdi
	pushq	%rsi
	subq	$8, %rsp
	movq	%rdi, %rsi
	movq	%rax, %rdi
	call	ftrace_lookup_ip
	addq	$8, %rsp
	popq	%rsi
	popq	%rdi
	testl	%eax, %eax
	jz	.Ltge_no
2:	movq	fgraph_max_depth(%rip), %rax
	testq	%rax, %rax
	jz	3f
	cmpq	%rax, %rsi
	jge	.Ltge_no
3:	# __trace_graph_entry(): count it and write the entry event.
	movq	fgraph_ops(%rip), %rdx
	movq	OPS_PRIVATE(%rdx), %rax
	lock incq	STATS_INVOCATIONS(%rax)
	xorl	%eax, %eax
	movq	%gs:PERCPU_CURRENT_TASK(%rax), %rax
	movl	%esi, %ecx			# depth, in the low half
	movq	TASK_PID(%rax), %r10
	shlq	$32, %r10
	orq	%r10, %rcx			# the task's pid, in the high half
	movq	TASK_CURR_RET_STACK(%rax), %r9
	imulq	$RET_STACK_SIZE, %r9, %r9
	addq	TASK_RET_STACK(%rax), %r9
	movq	RET_STACK_RET(%r9), %rsi	# parent ip: where it will return
	movq	RET_STACK_CALLTIME(%r9), %r9
	xorl	%r10d, %r10d
	movl	$KIND_function_graph, %r8d
	call	trace_log_event
.Ltge_yes:
	movl	$1, %eax
	retq
.Ltge_no:
	xorl	%eax, %eax
	retq

# void trace_graph_return(func %rdi, depth %rsi, calltime %rdx,
#                         rettime %rcx, ret %r8): the return event.
trace_graph_return:
	movq	%rcx, %r10			# rettime
	movq	%rdx, %r9			# calltime
	xorl	%eax, %eax
	movq	%gs:PERCPU_CURRENT_TASK(%rax), %rax
	movq	TASK_PID(%rax), %rax
	shlq	$32, %rax
	movl	%esi, %ecx			# depth, in the low half
	orq	%rax, %rcx			# the task's pid, in the high half
	movq	%r8, %rsi			# parent ip: where it returned
	movq	fgraph_ops(%rip), %rdx
	movl	$KIND_GRAPH_RETURN, %r8d
	call	trace_log_event			# a call: always 5 bytes across units
	retq
