/* The sandbox, in child processes: each role's filter lets its calls through and stops the rest
 * with exit 1 and the thread and call named; the argument checks; capabilities, no_new_privs and
 * seccomp as /proc shows them; Landlock's paths. */
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/kvm.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>
#include <cmocka.h>

#include "sandbox.h"

/* exit_group itself: _exit under ASan makes calls of its own (sigaltstack) no list has. */
static void quit(int status)
{
	syscall(SYS_exit_group, status);
}

struct child {
	pid_t pid;
	int err;  /* its stderr */
	int hold; /* it waits for a byte here (read is in every role that tests use) */
};

/* Forks a child that prepares the sandbox (and locks it, with paths), enters role and runs fn. */
static struct child start(enum sandbox_role role, bool lock, const struct sandbox_path *paths,
			  unsigned n, void (*fn)(int hold))
{
	int err[2], hold[2];
	struct child c;

	assert_int_equal(pipe(err), 0);
	assert_int_equal(pipe(hold), 0);
	c.pid = fork();
	assert_true(c.pid >= 0);
	if (c.pid == 0) {
		dup2(err[1], STDERR_FILENO);
		close(err[0]);
		close(hold[1]);
		if (sandbox_prepare(NULL) || (lock && sandbox_lock(paths, n)))
			quit(99);
		if (role < SANDBOX_ROLES)
			sandbox_enter(role, "tester");
		fn(hold[0]);
		quit(0);
	}
	close(err[1]);
	close(hold[0]);
	c.err = err[0];
	c.hold = hold[1];
	return c;
}

/* Lets it go on; its exit status, and what it printed in msg. */
static int finish(struct child *c, char *msg, size_t size)
{
	int status;
	ssize_t n;

	if (write(c->hold, "x", 1) != 1)
		fail();
	close(c->hold);
	assert_int_equal(waitpid(c->pid, &status, 0), c->pid);
	n = read(c->err, msg, size - 1);
	msg[n > 0 ? n : 0] = '\0';
	close(c->err);
	if (!WIFEXITED(status))
		print_message("killed by signal %d: %s\n", WTERMSIG(status), msg);
	assert_true(WIFEXITED(status)); /* never a silent kill by signal */
	return WEXITSTATUS(status);
}

static int run(enum sandbox_role role, void (*fn)(int hold), char *msg, size_t size)
{
	struct child c = start(role, false, NULL, 0, fn);

	return finish(&c, msg, size);
}

static void wait_hold(int hold)
{
	char b;

	if (read(hold, &b, 1) != 1)
		quit(98);
}

/* Whether the sandbox's message names the call with this machine's number for it. */
static bool names_call(const char *msg, const char *name, long nr)
{
	char want[64];

	snprintf(want, sizeof(want), "%s (%ld, arguments ", name, nr);
	return strstr(msg, want) != NULL;
}

static void do_openat(int hold)
{
	wait_hold(hold);
	syscall(SYS_openat, AT_FDCWD, "/etc/passwd", O_RDONLY);
}

static void a_call_outside_the_list_ends_the_process_with_its_name(void **state)
{
	char msg[512];

	assert_int_equal(run(SANDBOX_VCPU, do_openat, msg, sizeof(msg)), 1);
	assert_non_null(strstr(msg, "vmm: sandbox: thread tester made a system call its allowlist "
				    "does not have: openat ("));
	assert_true(names_call(msg, "openat", SYS_openat));
}

/* What each role is there for goes through: the child ends normally (0). */
static void disk_calls(int hold)
{
	int p[2];

	wait_hold(hold);
	if (pipe(p)) /* before: pipe2 is in no list */
		quit(97);
	quit(0);
}

static void a_loop_cannot_make_new_descriptors(void **state)
{
	char msg[512];

	assert_int_equal(run(SANDBOX_DISK, disk_calls, msg, sizeof(msg)), 1);
	assert_non_null(strstr(msg, "pipe2"));
}

static void kvm_and_sync(int hold)
{
	wait_hold(hold);
	/* Allowed calls on a bad descriptor: the kernel's answer, not the filter's. */
	if (ioctl(-1, KVM_RUN, 0) != -1 || errno != EBADF)
		quit(10);
	if (write(-1, "", 0) != -1 || errno != EBADF)
		quit(11);
	free(malloc(1 << 20)); /* mmap and munmap */
	quit(0);
}

static void a_vcpu_may_run_and_allocate(void **state)
{
	char msg[512];

	assert_int_equal(run(SANDBOX_VCPU, kvm_and_sync, msg, sizeof(msg)), 0);
	assert_string_equal(msg, "");
}

static void uring_then_sync(int hold)
{
	wait_hold(hold);
	if (syscall(SYS_io_uring_enter, -1, 0, 0, 0, NULL, 0) != -1 || errno != EBADF)
		quit(10);
	fdatasync(-1); /* a disk's flushes go through its ring too */
	quit(0);
}

static void a_disk_loop_has_its_ring_and_nothing_else(void **state)
{
	char msg[512];

	assert_int_equal(run(SANDBOX_DISK, uring_then_sync, msg, sizeof(msg)), 1);
	assert_true(names_call(msg, "fdatasync", SYS_fdatasync));
}

/* Argument checks: an allowed call with an argument outside its rule is stopped too. */
static void exec_mapping(int hold)
{
	wait_hold(hold);
	mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}

static void other_ioctl(int hold)
{
	wait_hold(hold);
	ioctl(-1, TIOCSTI, "x"); /* typing into the terminal: in no list */
}

static void other_signal(int hold)
{
	wait_hold(hold);
	syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), SIGTERM);
}

static void arguments_are_checked(void **state)
{
	char msg[512];

	assert_int_equal(run(SANDBOX_VCPU, exec_mapping, msg, sizeof(msg)), 1);
	assert_true(names_call(msg, "mmap", SYS_mmap));
	assert_int_equal(run(SANDBOX_VCPU, other_ioctl, msg, sizeof(msg)), 1);
	assert_true(names_call(msg, "ioctl", SYS_ioctl));
	assert_non_null(strstr(msg, " 0x5412 ")); /* the request: what a list would need */
	assert_int_equal(run(SANDBOX_VCPU, other_signal, msg, sizeof(msg)), 1);
	assert_non_null(strstr(msg, "tgkill"));
}

static void net_offload(int hold)
{
	wait_hold(hold);
	if (ioctl(-1, TUNSETOFFLOAD, 0) != -1 || errno != EBADF)
		quit(10);
	quit(0);
}

static void a_net_loop_may_set_offloads(void **state)
{
	char msg[512];

	assert_int_equal(run(SANDBOX_NET, net_offload, msg, sizeof(msg)), 0);
}

/* What a test outside the process sees: as for vmm, /proc/PID/status. */
static unsigned long long status_field(pid_t pid, const char *field)
{
	char path[64], line[256];
	unsigned long long v = ~0ULL;
	size_t len = strlen(field);
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, field, len) && line[len] == ':')
			v = strtoull(line + len + 1, NULL, !strcmp(field, "CapEff") ? 16 : 10);
	}
	fclose(f);
	return v;
}

static void locked_and_filtered_as_proc_shows(void **state)
{
	struct child c = start(SANDBOX_IO, true, NULL, 0, wait_hold);
	char msg[512];

	/* The child is in its read() of hold, or about to be: its status is set either way once
	 * sandbox_enter() returned, which a status of 2 shows. */
	for (int i = 0; i < 1000 && status_field(c.pid, "Seccomp") != 2; i++)
		usleep(1000);
	assert_int_equal(status_field(c.pid, "Seccomp"), 2);
	assert_int_equal(status_field(c.pid, "NoNewPrivs"), 1);
	assert_int_equal(status_field(c.pid, "CapEff"), 0);
	assert_int_equal(finish(&c, msg, sizeof(msg)), 0);
}

/* Landlock: the files given, as given; nothing else. */
static char allowed[64], other[64];

static void open_both(int hold)
{
	int a = open(allowed, O_RDWR), ro = open(other, O_RDONLY);

	if (a < 0)
		quit(10);
	if (ro >= 0)
		quit(11);
	quit(errno == EACCES ? 0 : 12);
}

static void landlock_limits_files_to_the_paths_given(void **state)
{
	struct sandbox_path p = { allowed, SANDBOX_READ_WRITE };
	char msg[512];
	long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, 1 /* VERSION */);
	int fd;

	if (abi < 1) {
		printf("(no Landlock in this kernel: %s; nothing to check)\n", strerror(errno));
		skip();
	}
	strcpy(allowed, "/tmp/test_sandbox.a.XXXXXX");
	strcpy(other, "/tmp/test_sandbox.b.XXXXXX");
	assert_true((fd = mkstemp(allowed)) >= 0);
	close(fd);
	assert_true((fd = mkstemp(other)) >= 0);
	close(fd);
	struct child c = start(SANDBOX_ROLES, true, &p, 1, open_both);
	assert_int_equal(finish(&c, msg, sizeof(msg)), 0);
	unlink(allowed);
	unlink(other);
}

static void selftest_env_makes_the_named_role_try_a_call(void **state)
{
	char msg[512];

	setenv("VMM_SANDBOX_SELFTEST", "disk", 1);
	assert_int_equal(run(SANDBOX_DISK, wait_hold, msg, sizeof(msg)), 1);
	unsetenv("VMM_SANDBOX_SELFTEST");
	assert_true(names_call(msg, "openat", SYS_openat));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(a_call_outside_the_list_ends_the_process_with_its_name),
	    cmocka_unit_test(a_loop_cannot_make_new_descriptors),
	    cmocka_unit_test(a_vcpu_may_run_and_allocate),
	    cmocka_unit_test(a_disk_loop_has_its_ring_and_nothing_else),
	    cmocka_unit_test(arguments_are_checked),
	    cmocka_unit_test(a_net_loop_may_set_offloads),
	    cmocka_unit_test(locked_and_filtered_as_proc_shows),
	    cmocka_unit_test(landlock_limits_files_to_the_paths_given),
	    cmocka_unit_test(selftest_env_makes_the_named_role_try_a_call),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
