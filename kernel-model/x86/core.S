# SPDX-License-Identifier: GPL-2.0-or-later
#
# The hand-written core of the model kernel: a system call path, the
# scheduler's entry, locking, and the two functions the ftrace start-up
# self-tests trace. Every function starts with FENTRY (`call __fentry__`,
# what gcc -pg -mfentry emits) and follows the SysV calling convention.

# long do_syscall_64(nr, a0, a1, a2): dispatch through sys_call_table.
do_syscall_64:
	FENTRY
	cmpq	$NR_syscalls, %rdi
	jae	1f
	movq	%rdi, %rax
	movq	%rsi, %rdi
	movq	%rdx, %rsi
	movq	%rcx, %rdx
	call	*sys_call_table(,%rax,8)
	retq
1:	movq	$-38, %rax			# -ENOSYS
	retq

sys_ni_syscall:
	FENTRY
	movq	$-38, %rax
	retq

__x64_sys_read:
	FENTRY
	call	ksys_read
	retq

__x64_sys_write:
	FENTRY
	call	ksys_write
	retq

__x64_sys_getpid:
	FENTRY
	call	__task_pid_nr_ns
	retq

# struct file *fdget_pos(fd): the file table lookup (NULL for a bad fd).
fdget_pos:
	FENTRY
	xorl	%eax, %eax
	cmpq	$8, %rdi
	jae	1f
	leaq	fd_table(%rip), %rax
	movq	(%rax,%rdi,8), %rax
1:	retq

fdput_pos:
	FENTRY
	retq

# long ksys_read(fd, buf, count)
ksys_read:
	FENTRY
	pushq	%rbx
	pushq	%r12
	pushq	%r13
	movq	%rsi, %r12
	movq	%rdx, %r13
	call	fdget_pos
	movq	%rax, %rbx
	movq	$-9, %rax			# -EBADF
	testq	%rbx, %rbx
	jz	1f
	movq	%rbx, %rdi
	movq	%r12, %rsi
	movq	%r13, %rdx
	call	vfs_read
	pushq	%rax
	movq	%rbx, %rdi
	call	fdput_pos
	popq	%rax
1:	popq	%r13
	popq	%r12
	popq	%rbx
	retq

# long ksys_write(fd, buf, count)
ksys_write:
	FENTRY
	pushq	%rbx
	pushq	%r12
	pushq	%r13
	movq	%rsi, %r12
	movq	%rdx, %r13
	call	fdget_pos
	movq	%rax, %rbx
	movq	$-9, %rax
	testq	%rbx, %rbx
	jz	1f
	movq	%rbx, %rdi
	movq	%r12, %rsi
	movq	%r13, %rdx
	call	vfs_write
	pushq	%rax
	movq	%rbx, %rdi
	call	fdput_pos
	popq	%rax
1:	popq	%r13
	popq	%r12
	popq	%rbx
	retq

# int rw_verify_area(file, count): 0, or -EINVAL for a huge count.
rw_verify_area:
	FENTRY
	xorl	%eax, %eax
	cmpq	$0x7ffff000, %rsi
	jbe	1f
	movq	$-22, %rax
1:	retq

# long vfs_read(file, buf, count)
vfs_read:
	FENTRY
	pushq	%rbx
	pushq	%r12
	pushq	%r13
	movq	%rdi, %rbx
	movq	%rsi, %r12
	movq	%rdx, %r13
	movq	%rdx, %rsi
	call	rw_verify_area
	testq	%rax, %rax
	jnz	1f
	movq	%rbx, %rdi
	movq	%r12, %rsi
	movq	%r13, %rdx
	call	new_sync_read
	pushq	%rax
	movq	%rbx, %rdi
	call	fsnotify_access
	popq	%rax
1:	popq	%r13
	popq	%r12
	popq	%rbx
	retq

# long new_sync_read(file, buf, count): copy from the file's data at pos,
# wrapping to the start at the end of the file.
new_sync_read:
	FENTRY
	pushq	%rbx
	movq	%rdi, %rbx
	movq	FILE_SIZE(%rbx), %rax
	subq	FILE_POS(%rbx), %rax		# bytes left
	cmpq	%rax, %rdx
	jbe	1f
	movq	%rax, %rdx
1:	pushq	%rdx
	movq	%rsi, %rdi			# to
	movq	FILE_DATA(%rbx), %rsi
	addq	FILE_POS(%rbx), %rsi		# from
	call	copy_to_user
	popq	%rax				# bytes copied
	addq	%rax, FILE_POS(%rbx)
	movq	FILE_POS(%rbx), %rcx
	cmpq	FILE_SIZE(%rbx), %rcx
	jb	2f
	movq	$0, FILE_POS(%rbx)
2:	popq	%rbx
	retq

# long vfs_write(file, buf, count)
vfs_write:
	FENTRY
	pushq	%rbx
	pushq	%r12
	pushq	%r13
	movq	%rdi, %rbx
	movq	%rsi, %r12
	movq	%rdx, %r13
	movq	%rdx, %rsi
	call	rw_verify_area
	testq	%rax, %rax
	jnz	1f
	movq	%rbx, %rdi
	movq	%r12, %rsi
	movq	%r13, %rdx
	call	new_sync_write
	pushq	%rax
	movq	%rbx, %rdi
	call	fsnotify_modify
	popq	%rax
1:	popq	%r13
	popq	%r12
	popq	%rbx
	retq

# long new_sync_write(file, buf, count): the model device adds every byte
# written to file->csum, so a workload's output can be checked.
new_sync_write:
	FENTRY
	movq	%rdx, %rax
	xorl	%r8d, %r8d
	testq	%rdx, %rdx
	jz	2f
1:	movzbq	(%rsi), %rcx
	addq	%rcx, %r8
	incq	%rsi
	decq	%rdx
	jnz	1b
2:	addq	%r8, FILE_CSUM(%rdi)
	retq

fsnotify_access:
	FENTRY
	retq

fsnotify_modify:
	FENTRY
	retq

# unsigned long copy_to_user(to, from, n): 0 = all copied.
copy_to_user:
	FENTRY
	movq	%rdx, %rcx
	rep movsb
	xorl	%eax, %eax
	retq

__task_pid_nr_ns:
	FENTRY
	xorl	%eax, %eax
	movq	%gs:PERCPU_CURRENT_PID(%rax), %rax
	retq

# The scheduler's entry: a lock around picking the next task.
schedule:
	FENTRY
	call	__schedule
	retq

__schedule:
	FENTRY
	leaq	rq_lock(%rip), %rdi
	call	_raw_spin_lock
	call	pick_next_task_fair
	leaq	rq_lock(%rip), %rdi
	call	_raw_spin_unlock
	retq

pick_next_task_fair:
	FENTRY
	incq	nr_switches(%rip)
	xorl	%eax, %eax
	retq

# spin_lock() disables preemption first: a task preempted while holding the
# lock would leave every other CPU spinning until it ran again.
_raw_spin_lock:
	FENTRY
	xorl	%eax, %eax
	incq	%gs:PERCPU_PREEMPT_COUNT(%rax)
1:	lock btsq	$0, (%rdi)
	jc	1b
	retq

_raw_spin_unlock:
	FENTRY
	movq	$0, (%rdi)
	xorl	%eax, %eax
	decq	%gs:PERCPU_PREEMPT_COUNT(%rax)
	retq

# DYN_FTRACE_TEST_NAME and DYN_FTRACE_TEST_NAME2 of kernel/trace/trace_selftest.c.
trace_selftest_dynamic_test_func:
	FENTRY
	xorl	%eax, %eax
	retq

trace_selftest_dynamic_test_func2:
	FENTRY
	xorl	%eax, %eax
	retq
