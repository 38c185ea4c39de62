# SPDX-License-Identifier: GPL-2.0-or-later
#
# The data-plane half of kernel/trace/ftrace.c: the list function that calls
# every registered ftrace_ops whose hashes match the traced ip. This walk is
# the cost per-ops trampolines remove for functions traced by a single ops.

# ftrace_lookup_ip(hash %rdi, ip %rsi) -> %eax = 1 if ip is in the hash.
# hash_long(ip, size_bits) picks the bucket; entries are singly linked.
# Clobbers %rax, %rcx, %rdx.
ftrace_lookup_ip:
	movq	HASH_SIZE_BITS(%rdi), %rcx
	xorl	%eax, %eax
	testq	%rcx, %rcx
	jz	1f
	movabsq	$0x61c8864680b583eb, %rax	# GOLDEN_RATIO_64
	imulq	%rsi, %rax
	negq	%rcx
	addq	$64, %rcx
	shrq	%cl, %rax
1:	movq	HASH_BUCKETS(%rdi), %rdx
	movq	(%rdx,%rax,8), %rax
2:	testq	%rax, %rax
	jz	4f
	cmpq	HASH_ENTRY_IP(%rax), %rsi
	je	3f
	movq	HASH_ENTRY_NEXT(%rax), %rax
	jmp	2b
3:	movl	$1, %eax
	retq
4:	xorl	%eax, %eax
	retq

# ftrace_ops_test(ops %rdi, ip %rsi, regs %rdx) -> %eax = 1 if ops traces ip.
# An empty filter hash means every function; the notrace hash always wins;
# an ops that wants pt_regs is skipped when the caller has none.
# Clobbers %rax, %rcx, %rdx, %rdi, %r8.
ftrace_ops_test:
	movq	%rdi, %r8
	testq	%rdx, %rdx
	jnz	1f
	testq	$FTRACE_OPS_FL_SAVE_REGS, OPS_FLAGS(%r8)
	jnz	.Lops_test_no
1:	movq	OPS_FILTER_HASH(%r8), %rdi
	testq	%rdi, %rdi
	jz	2f
	cmpq	$0, HASH_COUNT(%rdi)
	je	2f
	call	ftrace_lookup_ip
	testl	%eax, %eax
	jz	.Lops_test_no
2:	movq	OPS_NOTRACE_HASH(%r8), %rdi
	testq	%rdi, %rdi
	jz	.Lops_test_yes
	cmpq	$0, HASH_COUNT(%rdi)
	je	.Lops_test_yes
	call	ftrace_lookup_ip
	testl	%eax, %eax
	jnz	.Lops_test_no
.Lops_test_yes:
	movl	$1, %eax
	retq
.Lops_test_no:
	xorl	%eax, %eax
	retq

# ftrace_ops_list_func(ip %rdi, parent_ip %rsi, op %rdx (ignored), regs %rcx)
# Called from ftrace_call when more than one ops is registered. Takes the
# task's recursion bit (current->trace_recursion: a task preempted here
# blocks only itself), disables preemption around the walk only
# (preempt_disable_notrace: ops and hashes are freed after every CPU
# scheduled), then calls each matching ops with %rdx = that ops.
ftrace_ops_list_func:
	pushq	%rbx
	pushq	%r12
	pushq	%r13
	pushq	%r14
	xorl	%eax, %eax
	btsq	$TRACE_RECURSION_LIST_NORMAL_BIT, %gs:PERCPU_RECURSION(%rax)
	jc	.Llist_recursed
# The task holds its bit and preemption is still enabled: a scenario may preempt it here.
ftrace_ops_list_func_bit_held:
	incq	%gs:PERCPU_PREEMPT_COUNT(%rax)
	movq	%rdi, %r12
	movq	%rsi, %r13
	movq	%rcx, %r14
	movq	ftrace_ops_list(%rip), %rbx
.Llist_loop:
	leaq	ftrace_list_end(%rip), %rax
	cmpq	%rax, %rbx
	je	.Llist_done
	testq	$FTRACE_OPS_FL_STUB, OPS_FLAGS(%rbx)
	jnz	.Llist_next
	movq	%rbx, %rdi
	movq	%r12, %rsi
	movq	%r14, %rdx
	call	ftrace_ops_test
	testl	%eax, %eax
	jz	.Llist_next
	movq	%r12, %rdi
	movq	%r13, %rsi
	movq	%rbx, %rdx
	movq	%r14, %rcx
	call	*OPS_FUNC(%rbx)
.Llist_next:
	movq	OPS_NEXT(%rbx), %rbx
	jmp	.Llist_loop
.Llist_done:
	xorl	%eax, %eax
	decq	%gs:PERCPU_PREEMPT_COUNT(%rax)
	btrq	$TRACE_RECURSION_LIST_NORMAL_BIT, %gs:PERCPU_RECURSION(%rax)
.Llist_recursed:
	popq	%r14
	popq	%r13
	popq	%r12
	popq	%rbx
	retq

# ftrace_ops_recurs_func(ip, parent_ip, op %rdx, regs) (v3.18): what an ops
# that is not RECURSION_SAFE is called through when it is called alone: the
# list function's recursion bit, no preemption disabling.
ftrace_ops_recurs_func:
	xorl	%eax, %eax
	btsq	$TRACE_RECURSION_LIST_NORMAL_BIT, %gs:PERCPU_RECURSION(%rax)
	jc	1f
	pushq	%rdx
	call	*OPS_FUNC(%rdx)
	popq	%rdx
	xorl	%eax, %eax
	btrq	$TRACE_RECURSION_LIST_NORMAL_BIT, %gs:PERCPU_RECURSION(%rax)
1:	retq

# ftrace_ops_assist_func(ip, parent_ip, op %rdx, regs) (v4.x+): the same,
# with preemption disabled, as the later recursion helper does.
ftrace_ops_assist_func:
	xorl	%eax, %eax
	btsq	$TRACE_RECURSION_LIST_NORMAL_BIT, %gs:PERCPU_RECURSION(%rax)
	jc	1f
	incq	%gs:PERCPU_PREEMPT_COUNT(%rax)
	pushq	%rdx
	call	*OPS_FUNC(%rdx)
	popq	%rdx
	xorl	%eax, %eax
	decq	%gs:PERCPU_PREEMPT_COUNT(%rax)
	btrq	$TRACE_RECURSION_LIST_NORMAL_BIT, %gs:PERCPU_RECURSION(%rax)
1:	retq
