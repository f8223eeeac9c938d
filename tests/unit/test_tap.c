/* The tap backend's checks of a name before it asks the kernel for the device: a name that is no
 * network device, or one of another kind. Neither needs a tap or any privilege. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "backend/tap.h"

/* tap_open with stderr going to err. */
static int open_tap(const char *name, const char *what, char *err, size_t size)
{
	char path[] = "/tmp/vmm-tap-err-XXXXXX";
	int fd = mkstemp(path), saved = dup(2), ret;
	struct tap t;
	ssize_t n;

	assert_true(fd >= 0 && saved >= 0);
	fflush(stderr);
	dup2(fd, 2);
	ret = tap_open(&t, name, 1, what);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	n = pread(fd, err, size - 1, 0);
	err[n > 0 ? n : 0] = 0;
	close(fd);
	unlink(path);
	if (!ret)
		tap_close(&t);
	return ret;
}

static void missing_device(void **state)
{
	char err[512];

	assert_int_equal(open_tap("nosuch0", "--net tap=nosuch0", err, sizeof(err)), -ENODEV);
	assert_non_null(strstr(err, "--net tap=nosuch0: no network device nosuch0: make it with: "
				    "ip tuntap add dev nosuch0 mode tap"));
}

/* Issue 20: `--net tap=eth0` on an Ethernet card said to make it with `ip tuntap add dev eth0`,
 * which cannot work. The loopback device is there on every host. */
static void another_kind_of_device(void **state)
{
	char err[512];

	if (access("/sys/class/net/lo", F_OK))
		skip(); /* no sysfs: TUNSETIFF decides, and says something else */
	assert_int_equal(open_tap("lo", "--net tap=lo", err, sizeof(err)), -ENODEV);
	assert_non_null(strstr(err, "--net tap=lo: lo is another kind of network device, not a "
				    "tap: name a tap device"));
	assert_null(strstr(err, "ip tuntap add dev lo"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(missing_device),
		cmocka_unit_test(another_kind_of_device),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
