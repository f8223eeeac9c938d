/* The tap backend's checks of a name before it asks the kernel for the device: a name that is no
 * network device, or one of another kind; and how it follows a link's state from rtnetlink
 * messages (written by the test on a socket pair, and the kernel's own about the loopback
 * device). None needs a tap or any privilege. */
#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
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

#ifndef IFF_LOWER_UP
#define IFF_LOWER_UP 0x10000 /* linux/if.h */
#endif
/* What the kernel says of an interface that is up with its carrier. */
#define UP (IFF_UP | IFF_RUNNING | IFF_LOWER_UP)

struct link_msg {
	struct nlmsghdr h;
	struct ifinfomsg i;
};

static struct link_msg link_msg(uint16_t type, int index, unsigned flags)
{
	return (struct link_msg){ { sizeof(struct link_msg), type, 0, 0, 0 },
				  { AF_UNSPEC, 0, 1, index, flags, 0 } };
}

/* A stand-in: link_fd is one end of a datagram socket pair, the test writes at the other. */
static int link_pair(struct tap *t, int index)
{
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
	memset(t, 0, sizeof(*t));
	t->link_watched = true;
	t->link_fd = sv[0];
	t->ifindex = index;
	return sv[1];
}

static void send_msgs(int fd, const void *buf, size_t len)
{
	assert_int_equal(write(fd, buf, len), (ssize_t)len);
}

/* Only messages about the tap's own interface count; within a datagram and across them the last
 * one wins; down is "not up and running", or the interface gone. */
static void link_follows_messages(void **state)
{
	struct tap t;
	int host = link_pair(&t, 7);
	struct link_msg m[3];

	assert_int_equal(tap_link_update(&t), 0); /* nothing to read */
	m[0] = link_msg(RTM_NEWLINK, 3, 0);
	send_msgs(host, m, sizeof(m[0]));
	assert_int_equal(tap_link_update(&t), 0);
	assert_false(t.link_down);
	m[0] = link_msg(RTM_NEWLINK, 7, IFF_UP | IFF_RUNNING); /* up without its carrier */
	send_msgs(host, m, sizeof(m[0]));
	assert_int_equal(tap_link_update(&t), 1);
	assert_true(t.link_down);
	send_msgs(host, m, sizeof(m[0]));
	assert_int_equal(tap_link_update(&t), 0);
	m[0] = link_msg(RTM_NEWLINK, 7, UP);
	m[1] = link_msg(RTM_NEWLINK, 9, 0);
	m[2] = link_msg(RTM_GETLINK, 7, 0); /* not news of a link */
	send_msgs(host, m, sizeof(m));
	assert_int_equal(tap_link_update(&t), 1);
	assert_false(t.link_down);
	/* Down, then up again before vmm looked: no change to report. */
	m[0] = link_msg(RTM_NEWLINK, 7, IFF_RUNNING);
	send_msgs(host, m, sizeof(m[0]));
	m[0] = link_msg(RTM_NEWLINK, 7, UP);
	send_msgs(host, m, sizeof(m[0]));
	assert_int_equal(tap_link_update(&t), 0);
	m[0] = link_msg(RTM_DELLINK, 7, UP);
	send_msgs(host, m, sizeof(m[0]));
	assert_int_equal(tap_link_update(&t), 1);
	assert_true(t.link_down);
	close(host);
	close(t.link_fd);
}

/* Lengths are checked: a message shorter than its header ends the datagram, one longer than
 * the datagram (cut off) still counts by its fixed part, and nothing after it is read. */
static void link_malformed_messages(void **state)
{
	struct tap t;
	int host = link_pair(&t, 7);
	struct link_msg m[2];
	uint8_t buf[64] = { 0 };

	m[0] = link_msg(RTM_NEWLINK, 7, 0);
	m[0].h.nlmsg_len = 8;
	m[1] = link_msg(RTM_NEWLINK, 7, 0);
	send_msgs(host, m, sizeof(m));
	assert_int_equal(tap_link_update(&t), 0);
	m[0] = link_msg(RTM_NEWLINK, 7, 0);
	m[0].h.nlmsg_len = 0xffffffff;
	m[1] = link_msg(RTM_NEWLINK, 7, UP);
	send_msgs(host, m, sizeof(m));
	assert_int_equal(tap_link_update(&t), 1);
	assert_true(t.link_down); /* the first counted, the second was never reached */
	m[0] = link_msg(RTM_NEWLINK, 7, UP);
	send_msgs(host, m, sizeof(m[0]) - 4); /* too short for the flags: ignored */
	memcpy(buf, &m[0], sizeof(m[0]));
	send_msgs(host, buf, 3); /* too short for a header */
	assert_int_equal(tap_link_update(&t), 0);
	assert_true(t.link_down);
	close(host);
	close(t.link_fd);
}

/* One call reads at most TAP_LINK_BUDGET datagrams: a flood of other interfaces' news cannot
 * hold the net thread; what is left is read on the next call. */
static void link_reads_are_bounded(void **state)
{
	struct tap t;
	int host = link_pair(&t, 7);
	struct link_msg m = link_msg(RTM_NEWLINK, 8, 0);

	for (int i = 0; i < TAP_LINK_BUDGET; i++)
		send_msgs(host, &m, sizeof(m));
	m = link_msg(RTM_NEWLINK, 7, 0);
	send_msgs(host, &m, sizeof(m));
	assert_int_equal(tap_link_update(&t), 0);
	assert_false(t.link_down);
	assert_int_equal(tap_link_update(&t), 1);
	assert_true(t.link_down);
	close(host);
	close(t.link_fd);
}

/* Against the kernel, on the loopback device: tap_link_watch reads the state SIOCGIFFLAGS shows,
 * and tap_link_query (what a lost message leads to) gets an answer that puts it right. */
static void link_watch_and_query_the_kernel(void **state)
{
	struct ifreq ifr = { 0 };
	struct tap t = { .name = "lo" };
	struct pollfd pfd;
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), ret;
	bool down;

	assert_true(s >= 0);
	strcpy(ifr.ifr_name, "lo");
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		skip(); /* no loopback device here */
	close(s);
	down = (ifr.ifr_flags & (IFF_UP | IFF_RUNNING)) != (IFF_UP | IFF_RUNNING);
	ret = tap_link_watch(&t);
	if (ret == -EAFNOSUPPORT || ret == -EPROTONOSUPPORT || ret == -EACCES)
		skip(); /* no rtnetlink for us here */
	assert_int_equal(ret, 0);
	assert_true(t.link_watched);
	assert_int_equal(t.link_down, down);
	t.link_down = !down; /* as if a message had been lost */
	assert_int_equal(tap_link_query(&t), 0);
	pfd = (struct pollfd){ t.link_fd, POLLIN, 0 };
	assert_int_equal(poll(&pfd, 1, 5000), 1);
	assert_int_equal(tap_link_update(&t), 1);
	assert_int_equal(t.link_down, down);
	tap_close(&t);
	assert_false(t.link_watched);
}

/* A full socket buffer loses messages (the read says ENOBUFS), perhaps the tap's: then the
 * kernel is asked again. Here the buffer fills with the kernel's answers to requests about an
 * interface that does not exist; the state is only put right by asking about the tap again. */
static void link_lost_messages_are_asked_again(void **state)
{
	struct tap t = { .name = "lo" };
	struct tap none;
	int small = 1, ret;
	bool down;

	ret = tap_link_watch(&t);
	if (ret == -EAFNOSUPPORT || ret == -EPROTONOSUPPORT || ret == -EACCES || ret == -ENODEV)
		skip();
	assert_int_equal(ret, 0);
	assert_int_equal(setsockopt(t.link_fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), 0);
	down = t.link_down;
	t.link_down = !down;
	none = t;
	none.ifindex = 0x7fffffff;
	for (int i = 0; i < 64; i++)
		assert_int_equal(tap_link_query(&none), 0); /* each answered with an error */
	for (int i = 0; i < 100 && t.link_down != down; i++) {
		struct pollfd pfd = { t.link_fd, POLLIN, 0 };

		if (poll(&pfd, 1, 100) == 1)
			tap_link_update(&t);
	}
	assert_int_equal(t.link_down, down);
	tap_close(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(missing_device),
		cmocka_unit_test(another_kind_of_device),
		cmocka_unit_test(link_follows_messages),
		cmocka_unit_test(link_malformed_messages),
		cmocka_unit_test(link_reads_are_bounded),
		cmocka_unit_test(link_watch_and_query_the_kernel),
		cmocka_unit_test(link_lost_messages_are_asked_again),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
