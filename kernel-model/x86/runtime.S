# SPDX-License-Identifier: GPL-2.0-or-later
#
# The simulator's own guest code: not kernel functions, so no FENTRY (like the
# kernel's entry code, which is notrace).

# Every run from the host pushes this address as the return address and
# stops when RIP reaches it; executing it would be a bug, hence ud2.
__sim_return:
	ud2

# u64 sim_workload_syscalls(iterations, user_buf): per iteration, read 64
# bytes from fd 3, write them to fd 4, getpid(), schedule(). Returns the sum
# of the system calls' results.
sim_workload_syscalls:
	pushq	%rbx
	pushq	%r12
	pushq	%r13
	movq	%rdi, %rbx
	movq	%rsi, %r12
	xorl	%r13d, %r13d
1:	testq	%rbx, %rbx
	jz	2f
	movq	$NR_read, %rdi
	movq	$3, %rsi
	movq	%r12, %rdx
	movq	$64, %rcx
	call	do_syscall_64
	addq	%rax, %r13
	movq	$NR_write, %rdi
	movq	$4, %rsi
	movq	%r12, %rdx
	movq	$64, %rcx
	call	do_syscall_64
	addq	%rax, %r13
	movq	$NR_getpid, %rdi
	call	do_syscall_64
	addq	%rax, %r13
	call	schedule
	decq	%rbx
	jmp	1b
2:	movq	%r13, %rax
	popq	%r13
	popq	%r12
	popq	%rbx
	retq

# u64 sim_call_n(fn, n, arg0): calls fn(arg0) n times; returns the last result.
# The loop the host-cost benchmark times, identical in the simulator and on a
# bare engine.
sim_call_n:
	pushq	%rbx
	pushq	%r12
	pushq	%r13
	movq	%rdi, %rbx
	movq	%rsi, %r12
	movq	%rdx, %r13
	xorl	%eax, %eax
1:	testq	%r12, %r12
	jz	2f
	movq	%r13, %rdi
	call	*%rbx
	decq	%r12
	jmp	1b
2:	popq	%r13
	popq	%r12
	popq	%rbx
	retq
