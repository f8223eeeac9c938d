#include "backend/tap.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

_Static_assert(TAP_OFFLOAD_CSUM == TUN_F_CSUM && TAP_OFFLOAD_TSO4 == TUN_F_TSO4 &&
		       TAP_OFFLOAD_TSO6 == TUN_F_TSO6 && TAP_OFFLOAD_TSO_ECN == TUN_F_TSO_ECN &&
		       TAP_OFFLOAD_UFO == TUN_F_UFO,
	       "TAP_OFFLOAD_* are the TUN_F_* bits");

/* One queue: a new file on /dev/net/tun bound to the device. */
static int open_queue(struct tap *t, const char *what)
{
	struct ifreq ifr = { 0 };
	int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC), ret;
	int hdr = TAP_VNET_HDR;
	bool create = t->name[0] == '\0';

	if (fd < 0) {
		ret = -errno;
		log_error("%s: /dev/net/tun: %s%s", what, strerror(-ret),
			  ret == -ENOENT ? " (load the tun module: modprobe tun)" : "");
		return ret;
	}
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR |
			(t->nr_queues > 1 ? IFF_MULTI_QUEUE : 0);
	memcpy(ifr.ifr_name, t->name, sizeof(ifr.ifr_name));
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		ret = -errno;
		if (create && ret == -EPERM)
			log_error("%s: creating a tap device needs CAP_NET_ADMIN; or make one first: "
				  "ip tuntap add dev tap0 mode tap%s user $USER",
				  what, t->nr_queues > 1 ? " multi_queue" : "");
		else if (ret == -EPERM)
			log_error("%s: no permission to use %s: it belongs to another user (make it "
				  "with: ip tuntap add dev %s mode tap%s user $USER)",
				  what, t->name, t->name, t->nr_queues > 1 ? " multi_queue" : "");
		else if (ret == -EBUSY)
			log_error("%s: %s is in use by another process", what, t->name);
		else if (ret == -EINVAL && !create)
			log_error("%s: %s is not a %stap device (make one with: ip tuntap add dev %s "
				  "mode tap%s)",
				  what, t->name, t->nr_queues > 1 ? "multi_queue " : "single-queue ",
				  t->name, t->nr_queues > 1 ? " multi_queue" : "");
		else
			log_error("%s: TUNSETIFF %s: %s", what, create ? "(new device)" : t->name,
				  strerror(-ret));
		close(fd);
		return ret;
	}
	memcpy(t->name, ifr.ifr_name, sizeof(t->name));
	t->name[sizeof(t->name) - 1] = '\0';
	if (ioctl(fd, TUNSETVNETHDRSZ, &hdr) < 0) {
		ret = -errno;
		log_error("%s: %s: TUNSETVNETHDRSZ: %s", what, t->name, strerror(-ret));
		close(fd);
		return ret;
	}
	t->created |= create;
	return fd;
}

/* Whether sysfs shows name as a device of another kind than tun/tap (a loopback, an Ethernet card,
 * a bridge): only tun and tap devices have tun_flags. Without sysfs, TUNSETIFF decides. */
static bool other_kind_of_device(const char *name)
{
	char path[64];

	snprintf(path, sizeof(path), "/sys/class/net/%s", name);
	if (access(path, F_OK))
		return false;
	snprintf(path, sizeof(path), "/sys/class/net/%s/tun_flags", name);
	return access(path, F_OK) != 0;
}

/* SIOCGIFFLAGS/SIOCSIFFLAGS and SIOCGIFMTU go through any socket. */
static int ifreq_ioctl(const char *name, unsigned long req, struct ifreq *ifr)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), ret = 0;

	if (s < 0)
		return -errno;
	snprintf(ifr->ifr_name, sizeof(ifr->ifr_name), "%s", name);
	if (ioctl(s, req, ifr) < 0)
		ret = -errno;
	close(s);
	return ret;
}

int tap_open(struct tap *t, const char *name, unsigned nr_queues, const char *what)
{
	unsigned all = TAP_OFFLOAD_CSUM | TAP_OFFLOAD_TSO4 | TAP_OFFLOAD_TSO6 | TAP_OFFLOAD_TSO_ECN;
	int ret;

	memset(t, 0, sizeof(*t));
	t->link_fd = -1;
	for (unsigned i = 0; i < TAP_MAX_QUEUES; i++)
		t->fds[i] = -1;
	if (nr_queues < 1 || nr_queues > TAP_MAX_QUEUES || strlen(name) >= sizeof(t->name)) {
		log_error("%s: bad tap name or queue count", what);
		return -EINVAL;
	}
	snprintf(t->name, sizeof(t->name), "%s", name);
	t->nr_queues = nr_queues;
	/* TUNSETIFF would make a missing device (with CAP_NET_ADMIN): a typo must not. */
	if (name[0] && !if_nametoindex(name)) {
		log_error("%s: no network device %s: make it with: ip tuntap add dev %s mode tap%s "
			  "user $USER",
			  what, name, name, nr_queues > 1 ? " multi_queue" : "");
		return -ENODEV;
	}
	/* TUNSETIFF would say EINVAL, as for a tap made without multi_queue, and `ip tuntap add`
	 * cannot make a tap under a name that is taken. */
	if (name[0] && other_kind_of_device(name)) {
		log_error("%s: %s is another kind of network device, not a tap: name a tap device "
			  "(make one with: ip tuntap add dev tap0 mode tap%s user $USER)",
			  what, name, nr_queues > 1 ? " multi_queue" : "");
		return -ENODEV;
	}
	for (unsigned i = 0; i < nr_queues; i++) {
		if ((ret = open_queue(t, what)) < 0)
			goto fail;
		t->fds[i] = ret;
	}
	if (t->created) {
		struct ifreq ifr = { 0 };

		if ((ret = ifreq_ioctl(t->name, SIOCGIFFLAGS, &ifr)) == 0) {
			ifr.ifr_flags |= IFF_UP;
			ret = ifreq_ioctl(t->name, SIOCSIFFLAGS, &ifr);
		}
		if (ret)
			log_warn("%s: cannot bring %s up: %s", what, t->name, strerror(-ret));
		log_notice("%s: created tap device %s", what, t->name);
	}
	/* Which offloads the kernel takes: UFO was removed in Linux 4.14 and came back for taps
	 * only, so ask rather than assume. Then none until the driver says what it can take. */
	if (ioctl(t->fds[0], TUNSETOFFLOAD, all | TAP_OFFLOAD_UFO) == 0)
		t->offloads = all | TAP_OFFLOAD_UFO;
	else if (ioctl(t->fds[0], TUNSETOFFLOAD, all) == 0)
		t->offloads = all;
	if ((ret = tap_set_offloads(t, 0))) {
		log_error("%s: %s: TUNSETOFFLOAD: %s", what, t->name, strerror(-ret));
		goto fail;
	}
	/* Once it is up (when vmm made it) and attached: a tap has its carrier while a queue is. */
	if ((ret = tap_link_watch(t)))
		log_warn("%s: cannot follow %s's link state (%s): the guest sees it always up",
			 what, t->name, strerror(-ret));
	return 0;
fail:
	tap_close(t);
	return ret;
}

void tap_close(struct tap *t)
{
	for (unsigned i = 0; i < TAP_MAX_QUEUES; i++) {
		if (t->fds[i] >= 0)
			close(t->fds[i]);
		t->fds[i] = -1;
	}
	tap_close_link(t);
}

void tap_close_link(struct tap *t)
{
	if (t->link_watched)
		close(t->link_fd);
	t->link_watched = false;
	t->link_fd = -1;
}

int tap_set_offloads(struct tap *t, unsigned offloads)
{
	/* A tap that takes no offloads has nothing to set (and tests' stand-in taps are sockets). */
	if (!t->offloads)
		return 0;
	/* Queue 0 is never detached, and the setting is the device's. */
	return ioctl(t->fds[0], TUNSETOFFLOAD, offloads & t->offloads) < 0 ? -errno : 0;
}

int tap_set_vnet_hdr(struct tap *t, int len)
{
	/* The size is the device's, as the offloads are: queue 0 sets it for all. */
	return ioctl(t->fds[0], TUNSETVNETHDRSZ, &len) < 0 ? -errno : 0;
}

int tap_enable_queue(struct tap *t, unsigned q, bool enable)
{
	struct ifreq ifr = { .ifr_flags = enable ? IFF_ATTACH_QUEUE : IFF_DETACH_QUEUE };

	if (t->nr_queues == 1 || q >= t->nr_queues)
		return 0;
	return ioctl(t->fds[q], TUNSETQUEUE, &ifr) < 0 ? -errno : 0;
}

int tap_get_mtu(const struct tap *t)
{
	struct ifreq ifr = { 0 };
	int ret = ifreq_ioctl(t->name, SIOCGIFMTU, &ifr);

	return ret ? ret : ifr.ifr_mtu;
}

/* --- Link state ------------------------------------------------------------------------------- */

#ifndef IFF_LOWER_UP
#define IFF_LOWER_UP 0x10000 /* linux/if.h, which clashes with net/if.h */
#endif

/* Up, and with its carrier (IFF_LOWER_UP, which netif_carrier_on sets at once; IFF_RUNNING
 * follows only when the kernel's link watch has run, a moment after a queue is attached). */
static bool link_down_of(unsigned flags)
{
	return (flags & (IFF_UP | IFF_LOWER_UP)) != (IFF_UP | IFF_LOWER_UP);
}

int tap_link_watch(struct tap *t)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK, .nl_groups = RTMGRP_LINK };
	int fd, ret;

	t->link_watched = t->link_down = t->link_lost = false;
	t->link_fd = -1;
	if (!(t->ifindex = (int)if_nametoindex(t->name)))
		return -errno;
	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd < 0)
		return -errno;
	/* Subscribed before the state is asked for: a change in between arrives as a message. */
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	t->link_fd = fd;
	t->link_watched = true;
	/* SIOCGIFFLAGS has no room for IFF_LOWER_UP: ask rtnetlink, whose answer is queued before
	 * write returns. Without one, the link counts as up. */
	if ((ret = tap_link_query(t))) {
		tap_close_link(t);
		return ret;
	}
	tap_link_update(t);
	return 0;
}

/* The messages of one datagram from link_fd, buf[0, len): the last one about this tap wins. They
 * come from the kernel (only a process with CAP_NET_ADMIN may send to another's rtnetlink
 * socket), and are read with every length checked all the same. Only two fixed headers are read,
 * with the kernel's own macros; libmnl's walk (1.0.4, Debian 12's) was tried instead and spins
 * for ever on a message whose nlmsg_len is 0xffffffff (mnl_nlmsg_ok casts it to -1, and the
 * aligned length it then steps by is 0): test_tap's link_malformed_messages. */
static void link_parse(struct tap *t, const uint8_t *buf, size_t len)
{
	const size_t min = NLMSG_LENGTH(sizeof(struct ifinfomsg));
	size_t off = 0;

	while (len - off >= sizeof(struct nlmsghdr)) {
		struct nlmsghdr h;
		struct ifinfomsg ifi;

		memcpy(&h, buf + off, sizeof(h));
		if (h.nlmsg_len < sizeof(h))
			return;
		/* The flags are in the fixed part: a message cut off by the buffer still counts. */
		if ((h.nlmsg_type == RTM_NEWLINK || h.nlmsg_type == RTM_DELLINK) &&
		    h.nlmsg_len >= min && len - off >= min) {
			memcpy(&ifi, buf + off + NLMSG_HDRLEN, sizeof(ifi));
			if (ifi.ifi_index == t->ifindex)
				t->link_down = h.nlmsg_type == RTM_DELLINK ||
					       link_down_of(ifi.ifi_flags);
		}
		/* nlmsg_len is at most len - off here, so its alignment cannot wrap. */
		if (h.nlmsg_len > len - off || NLMSG_ALIGN(h.nlmsg_len) >= len - off)
			return;
		off += NLMSG_ALIGN(h.nlmsg_len);
	}
}

int tap_link_update(struct tap *t)
{
	uint8_t buf[8192] __attribute__((aligned(4)));
	bool was = t->link_down;

	if (!t->link_watched)
		return 0;
	for (unsigned i = 0; i < TAP_LINK_BUDGET; i++) {
		ssize_t n = read(t->link_fd, buf, sizeof(buf));

		if (n < 0 && errno == ENOBUFS) {
			/* The socket's buffer overflowed: messages were lost, maybe this tap's. */
			t->link_lost = true;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN && t->link_lost) {
			/* Asked once all is read: into a full buffer the answer would be lost too.
			 * It is queued before write returns, so this call reads it. */
			t->link_lost = false;
			tap_link_query(t);
			continue;
		}
		if (n <= 0)
			break; /* EAGAIN: all read */
		link_parse(t, buf, (size_t)n);
	}
	return t->link_down != was;
}

int tap_link_query(struct tap *t)
{
	struct {
		struct nlmsghdr h;
		struct ifinfomsg i;
	} req = {
		.h = { .nlmsg_len = sizeof(req), .nlmsg_type = RTM_GETLINK,
		       .nlmsg_flags = NLM_F_REQUEST },
		.i = { .ifi_family = AF_UNSPEC, .ifi_index = t->ifindex },
	};

	if (!t->link_watched)
		return -EBADF;
	/* write, as any thread may: the reply is an RTM_NEWLINK like the others. */
	return write(t->link_fd, &req, sizeof(req)) == (ssize_t)sizeof(req) ? 0 : -errno;
}
