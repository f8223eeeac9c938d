/* The control socket, served for real on a unix socket (no VM: the ops are the test's): every
 * endpoint, the bad requests (malformed JSON, unknown paths and fields, wrong methods, bodies over
 * the limit, silent clients, more clients than it takes), the socket file, and `vmm ctl`. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "api/api.h"

struct fake {
	bool has_balloon;
	uint64_t target;
	int stopped; /* vm.shutdown: 1, vm.reboot: 2 */
	bool paused;
	int presses; /* of the power button */
};

static unsigned fake_devices(void *opaque, struct api_device *out, unsigned max)
{
	out[0] = (struct api_device){ .name = "rng0", .type = "rng", .transport = "pci",
				      .device_features = 0x130000000ULL, .status = 15,
				      .queues = 1, .kicks = 7, .interrupts = 5 };
	out[1] = (struct api_device){ .name = "balloon0", .type = "balloon", .transport = "mmio",
				      .legacy = true, .queues = 5 };
	return 2;
}

static int fake_balloon(void *opaque, struct balloon_info *out)
{
	struct fake *f = opaque;

	if (!f->has_balloon)
		return -ENODEV;
	*out = (struct balloon_info){ .target = f->target, .actual = 4096 * 3, .inflated = 3 };
	out->stats.have = 1 << 4 | 1 << 5;
	out->stats.val[4] = 1000;
	out->stats.val[5] = 2000;
	return 0;
}

static int fake_resize(void *opaque, uint64_t bytes)
{
	struct fake *f = opaque;

	if (!f->has_balloon)
		return -ENODEV;
	f->target = bytes;
	return 0;
}

static int fake_pause(void *opaque)
{
	struct fake *f = opaque;

	if (f->paused)
		return -EBUSY;
	f->paused = true;
	return 0;
}

static int fake_resume(void *opaque)
{
	struct fake *f = opaque;

	if (!f->paused)
		return -EBUSY;
	f->paused = false;
	return 0;
}

static bool fake_paused(void *opaque)
{
	return ((struct fake *)opaque)->paused;
}

static void fake_power_button(void *opaque)
{
	((struct fake *)opaque)->presses++;
}

static void fake_stop(void *opaque, bool reboot)
{
	((struct fake *)opaque)->stopped = reboot ? 2 : 1;
}

static const struct api_ops ops = { fake_devices, fake_balloon,	 fake_resize,	   fake_pause,
				    fake_resume,  fake_paused,	 fake_power_button, fake_stop };

struct fx {
	char dir[64], path[96];
	struct vm_config cfg;
	struct fake fake;
	struct api api;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	strcpy(f->dir, "/tmp/test_api.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/api.sock", f->dir);
	f->cfg = (struct vm_config){ .kernel = "bzImage", .cmdline = "console=ttyS0", .cpus = 2,
				     .memory = 64 << 20 };
	f->fake.has_balloon = true;
	assert_int_equal(api_open(&f->api, f->path, &f->cfg, &ops, &f->fake), 0);
	assert_int_equal(api_start(&f->api), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	api_close(&f->api);
	assert_int_equal(access(f->path, F_OK), -1); /* the socket is gone */
	rmdir(f->dir);
	free(f);
	return 0;
}

static int connect_to(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	strcpy(sun.sun_path, path);
	assert_int_equal(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	return fd;
}

/* Sends raw bytes on a new connection; returns the HTTP status, the reply in buf. Waits for the
 * server's answer (it closes the connection: Connection: close), at most 30 s. */
static int raw(struct fx *f, const char *req, size_t len, char *buf, size_t size)
{
	int fd = connect_to(f->path), status = -1;
	size_t got = 0;

	assert_int_equal(send(fd, req, len, MSG_NOSIGNAL), (ssize_t)len);
	for (;;) {
		struct pollfd p = { fd, POLLIN, 0 };
		ssize_t n;

		assert_int_equal(poll(&p, 1, 30000), 1);
		n = recv(fd, buf + got, size - 1 - got, 0);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	buf[got] = '\0';
	close(fd);
	sscanf(buf, "HTTP/1.%*d %d", &status);
	return status;
}

static int req(struct fx *f, const char *method, const char *path, const char *body, char *buf,
	       size_t size)
{
	char r[8192];
	int n = snprintf(r, sizeof(r),
			 "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %zu\r\n"
			 "\r\n%s",
			 method, path, strlen(body), body);

	return raw(f, r, (size_t)n, buf, size);
}

static void endpoints_answer(void **state)
{
	struct fx *f = *state;
	char buf[8192];

	assert_int_equal(req(f, "GET", "/api/v1/vmm.ping", "", buf, sizeof(buf)), 200);
	assert_non_null(strstr(buf, "\"version\":\"" VMM_VERSION "\""));
	assert_non_null(strstr(buf, "Content-Type: application/json"));
	assert_int_equal(req(f, "GET", "/api/v1/vm.info", "", buf, sizeof(buf)), 200);
	assert_non_null(strstr(buf, "\"boot_vcpus\":2"));
	assert_non_null(strstr(buf, "\"memory_actual_size\":67096576")); /* 64M - 3 pages */
	assert_non_null(strstr(buf, "\"device_features\":\"0x130000000\""));
	assert_non_null(strstr(buf, "\"state\":\"Running\""));
	assert_int_equal(req(f, "GET", "/api/v1/vm.counters", "", buf, sizeof(buf)), 200);
	assert_non_null(strstr(buf, "\"rng0\":{\"notifications\":7,\"interrupts\":5}"));
	assert_non_null(strstr(buf, "\"inflated_pages\":3"));
	assert_int_equal(req(f, "GET", "/api/v1/balloon.statistics", "", buf, sizeof(buf)), 200);
	assert_non_null(strstr(buf, "\"free_memory\":1000"));
	assert_non_null(strstr(buf, "\"total_memory\":2000"));
	assert_null(strstr(buf, "swap_in")); /* not reported: not shown */
	assert_int_equal(req(f, "PUT", "/api/v1/vm.resize", "{\"desired_balloon\": 1048576}", buf,
			     sizeof(buf)),
			 204);
	assert_int_equal(f->fake.target, 1048576);
	assert_int_equal(req(f, "PUT", "/api/v1/vm.power-button", "", buf, sizeof(buf)), 204);
	assert_int_equal(f->fake.presses, 1);
}

/* Pause and resume each change the state once; what needs a running guest waits for resume. */
static void pause_and_resume_are_409_in_the_wrong_state(void **state)
{
	struct fx *f = *state;
	char buf[8192];

	assert_int_equal(req(f, "PUT", "/api/v1/vm.resume", "", buf, sizeof(buf)), 409);
	assert_non_null(strstr(buf, "not paused"));
	assert_int_equal(req(f, "PUT", "/api/v1/vm.pause", "", buf, sizeof(buf)), 204);
	assert_int_equal(req(f, "GET", "/api/v1/vm.info", "", buf, sizeof(buf)), 200);
	assert_non_null(strstr(buf, "\"state\":\"Paused\""));
	assert_int_equal(req(f, "PUT", "/api/v1/vm.pause", "", buf, sizeof(buf)), 409);
	assert_non_null(strstr(buf, "already paused"));
	assert_int_equal(req(f, "PUT", "/api/v1/vm.power-button", "", buf, sizeof(buf)), 409);
	assert_int_equal(req(f, "PUT", "/api/v1/vm.reboot", "", buf, sizeof(buf)), 409);
	assert_int_equal(f->fake.presses, 0);
	assert_int_equal(req(f, "PUT", "/api/v1/vm.resume", "", buf, sizeof(buf)), 204);
	assert_int_equal(req(f, "GET", "/api/v1/vm.info", "", buf, sizeof(buf)), 200);
	assert_non_null(strstr(buf, "\"state\":\"Running\""));
	assert_int_equal(f->fake.stopped, 0);
}

static void bad_requests_get_4xx_and_the_server_goes_on(void **state)
{
	struct fx *f = *state;
	char buf[8192], big[6000];
	static const struct {
		const char *method, *path, *body;
		int status;
		const char *says;
	} bad[] = {
		{ "GET", "/api/v1/nothing", "", 404, "Not Found" },
		{ "GET", "/elsewhere", "", 404, "Not Found" },
		{ "GET", "/api/v1/vm.resize", "", 405, "Allow: PUT" },
		{ "DELETE", "/api/v1/vm.info", "", 405, "Allow: GET" },
		{ "GET", "/api/v1/vm.info", "{}", 400, "takes none" },
		{ "PUT", "/api/v1/vm.resize", "{\"desired_balloon\": ", 400, "Malformed JSON" },
		{ "PUT", "/api/v1/vm.resize", "{\"desired_balloon\": 1, \"x\": 2}", 400, "unpacked" },
		{ "PUT", "/api/v1/vm.resize", "{\"desired_balloon\": \"1G\"}", 400, "integer" },
		{ "PUT", "/api/v1/vm.resize", "{\"desired_balloon\": -4096}", 400, "0 or more" },
		{ "PUT", "/api/v1/vm.resize", "{\"desired_balloon\": 1e9}", 400, "integer" },
		{ "PUT", "/api/v1/vm.resize", "{\"desired_balloon\": 1, \"desired_balloon\": 2}", 400,
		  "duplicate" },
		{ "PUT", "/api/v1/vm.resize", "{\"desired_vcpus\": 4}", 400, "Not supported" },
		{ "PUT", "/api/v1/vm.resize", "{\"desired_balloon\": 99999999999}", 400, "more than" },
		{ "PUT", "/api/v1/vm.resize", "[]", 400, "Bad request body" },
		{ "PUT", "/api/v1/vm.shutdown", "now", 400, "takes none" },
		{ "GET", "/api/v1/\xff\xfe", "", 404, "[\"Not Found\"]" }, /* not UTF-8 (fuzz_api) */
	};

	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int status = req(f, bad[i].method, bad[i].path, bad[i].body, buf, sizeof(buf));

		if (status != bad[i].status || !strstr(buf, bad[i].says))
			fail_msg("%s %s '%s': %d, wanted %d with '%s':\n%s", bad[i].method,
				 bad[i].path, bad[i].body, status, bad[i].status, bad[i].says, buf);
	}
	/* Bodies over the limit: said by Content-Length, and sent chunked. */
	memset(big, '1', sizeof(big));
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(req(f, "PUT", "/api/v1/vm.resize", big, buf, sizeof(buf)), 413);
	char chunked[8000];
	int n = snprintf(chunked, sizeof(chunked),
			 "PUT /api/v1/vm.resize HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
			 "Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n",
			 (unsigned)strlen(big), big);
	assert_int_equal(raw(f, chunked, (size_t)n, buf, sizeof(buf)), 413);
	/* Not HTTP at all: libmicrohttpd's own 400. */
	assert_int_equal(raw(f, "HELLO THERE\r\n\r\n", 15, buf, sizeof(buf)), 400);
	assert_int_equal(f->fake.target, 0);
	assert_int_equal(f->fake.stopped, 0);
	assert_int_equal(req(f, "GET", "/api/v1/vmm.ping", "", buf, sizeof(buf)), 200);
}

static void silent_clients_do_not_stall_the_others(void **state)
{
	struct fx *f = *state;
	char buf[4096];
	int silent[API_MAX_CLIENTS];

	/* One client that says nothing: another is answered at once. */
	silent[0] = connect_to(f->path);
	assert_int_equal(req(f, "GET", "/api/v1/vmm.ping", "", buf, sizeof(buf)), 200);
	/* More silent clients than it takes: the next waits until the idle ones are timed out
	 * (API_IDLE_S), then is answered. */
	for (unsigned i = 1; i < sizeof(silent) / sizeof(silent[0]); i++)
		silent[i] = connect_to(f->path);
	assert_int_equal(req(f, "GET", "/api/v1/vmm.ping", "", buf, sizeof(buf)), 200);
	for (unsigned i = 0; i < sizeof(silent) / sizeof(silent[0]); i++)
		close(silent[i]);
}

static void shutdown_stops_once_answered(void **state)
{
	struct fx *f = *state;
	char buf[4096];

	assert_int_equal(req(f, "PUT", "/api/v1/vm.shutdown", "", buf, sizeof(buf)), 204);
	/* The reply is out before the stop: wait for the completion (the thread's next turn). */
	for (int i = 0; i < 2000 && !f->fake.stopped; i++)
		usleep(1000);
	assert_int_equal(f->fake.stopped, 1);
	f->fake.stopped = 0;
	assert_int_equal(req(f, "PUT", "/api/v1/vm.reboot", "", buf, sizeof(buf)), 204);
	for (int i = 0; i < 2000 && !f->fake.stopped; i++)
		usleep(1000);
	assert_int_equal(f->fake.stopped, 2);
}

static void no_balloon_is_404(void **state)
{
	struct fx *f = *state;
	char buf[4096];

	f->fake.has_balloon = false;
	assert_int_equal(req(f, "GET", "/api/v1/balloon.statistics", "", buf, sizeof(buf)), 404);
	assert_int_equal(req(f, "PUT", "/api/v1/vm.resize", "{\"desired_balloon\": 0}", buf,
			     sizeof(buf)),
			 404);
}

static void the_socket_is_the_owners_alone_and_not_taken_twice(void **state)
{
	struct fx *f = *state;
	struct api other;
	struct stat st;
	char file[128];
	int fd;

	assert_int_equal(lstat(f->path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600);
	/* A second server on a live socket is refused; a stale one or a file are not taken. */
	assert_int_equal(api_open(&other, f->path, &f->cfg, &ops, &f->fake), -EADDRINUSE);
	snprintf(file, sizeof(file), "%s/file", f->dir);
	fd = open(file, O_CREAT | O_WRONLY, 0600);
	close(fd);
	assert_int_equal(api_open(&other, file, &f->cfg, &ops, &f->fake), -EEXIST);
	unlink(file);
}

/* vmm ctl, in a child (it prints): exit 0 done, 1 refused or unreachable, 2 usage. */
static int ctl(const char *sock, const char *cmd, const char *arg)
{
	pid_t pid = fork();
	int status;

	if (pid == 0) {
		char *argv[] = { (char *)sock, (char *)cmd, (char *)arg, NULL };
		int null = open("/dev/null", O_WRONLY);

		dup2(null, 1);
		dup2(null, 2);
		_exit(api_client(arg ? 3 : 2, argv));
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return WEXITSTATUS(status);
}

static void ctl_exit_statuses(void **state)
{
	struct fx *f = *state;
	char nowhere[128];

	assert_int_equal(ctl(f->path, "ping", NULL), 0);
	assert_int_equal(ctl(f->path, "resize", "2M"), 0);
	assert_int_equal(f->fake.target, 2 << 20);
	assert_int_equal(ctl(f->path, "resize", "lots"), 2);
	assert_int_equal(ctl(f->path, "frobnicate", NULL), 2);
	assert_int_equal(ctl(f->path, "resize", "1T"), 1); /* more than RAM: the server says no */
	snprintf(nowhere, sizeof(nowhere), "%s/none.sock", f->dir);
	assert_int_equal(ctl(nowhere, "ping", NULL), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(endpoints_answer, setup, teardown),
		cmocka_unit_test_setup_teardown(bad_requests_get_4xx_and_the_server_goes_on, setup,
						teardown),
		cmocka_unit_test_setup_teardown(silent_clients_do_not_stall_the_others, setup,
						teardown),
		cmocka_unit_test_setup_teardown(shutdown_stops_once_answered, setup, teardown),
		cmocka_unit_test_setup_teardown(pause_and_resume_are_409_in_the_wrong_state, setup,
						teardown),
		cmocka_unit_test_setup_teardown(no_balloon_is_404, setup, teardown),
		cmocka_unit_test_setup_teardown(the_socket_is_the_owners_alone_and_not_taken_twice,
						setup, teardown),
		cmocka_unit_test_setup_teardown(ctl_exit_statuses, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
