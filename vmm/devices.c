#include "devices.h"
#include "backend/term.h"
#include "bus/pci.h"
#include "arch.h"
#include "bus/uart.h"
#include "config.h"
#include "event.h"
#include "log.h"
#include "backend/disk.h"
#include "backend/tap.h"
#include "virtio/9p.h"
#include "virtio/balloon.h"
#include "virtio/blk.h"
#include "virtio/console.h"
#include "virtio/mmio.h"
#include "virtio/net.h"
#include "virtio/pci.h"
#include "virtio/rng.h"
#include "virtio/vsock.h"
#include "virtio/scsi.h"
#include "vm.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The virtio devices, in the order they are made (and laid out on PCI and virtio-mmio): the
 * entropy device, the console, the disks in the order given, the SCSI controller, the network
 * devices in the order given, the balloon, the shared directories in the order given, the socket
 * device. */
enum {
	VDEV_RNG,
	VDEV_CONSOLE,
	VDEV_DISK0,
	VDEV_SCSI = VDEV_DISK0 + CONFIG_MAX_DISKS,
	VDEV_NET0,
	VDEV_BALLOON = VDEV_NET0 + CONFIG_MAX_NETS,
	VDEV_FS0,
	VDEV_VSOCK = VDEV_FS0 + CONFIG_MAX_SHARES,
	VDEV_MAX
};

/* A --disk: its image, its device and its own I/O thread, so that one busy disk does not hold up
 * the other devices' queues. */
struct disk_slot {
	struct disk disk;
	struct blk_dev blk;
	struct event_loop loop;
	bool loop_init, blk_init;
};

/* A --fs: its device (with the file server) and its own I/O thread, as file system calls may
 * take their time. */
struct fs_slot {
	struct v9p_dev fs;
	struct event_loop loop;
	bool loop_init, fs_init;
};

/* A --net: its tap, its device and its own I/O thread. */
struct net_slot {
	struct tap tap;
	struct net_dev net;
	struct event_loop loop;
	bool tap_open, loop_init, net_init;
};

struct vm_devices {
	struct vm *vm;
	enum panic_action on_panic;
	enum reboot_action on_reboot;
	struct platform platform;
	struct uart uart;
	bool has_term;
	struct term term;
	struct event_loop io; /* the I/O thread: every virtio doorbell and backend fd */
	bool io_init, uart_ready;
	struct pci_host pci;
	bool pci_init;
	struct rng_dev *rng;
	struct console_dev *console;
	struct balloon_dev *balloon;
	struct vsock_dev *vsock;
	struct disk_slot *disks; /* cfg->nr_disks of them */
	unsigned nr_disks;
	/* The SCSI controller, its LUNs' images and its I/O thread. */
	struct scsi_dev *scsi;
	struct disk *luns; /* cfg->nr_luns of them */
	unsigned nr_luns;
	struct event_loop scsi_loop;
	bool scsi_loop_init;
	struct net_slot *nets; /* cfg->nr_nets of them */
	unsigned nr_nets;
	struct fs_slot *shares; /* cfg->nr_shares of them */
	unsigned nr_shares;
	/* Each virtio device's transport: exactly one of the two is set. */
	struct virtio_pci *vpci[VDEV_MAX];
	struct virtio_mmio *vmmio[VDEV_MAX];
};

/* What the configuration says about virtio device i: present, and its options. */
static const struct virtio_opts *vdev_opts(const struct vm_config *cfg, unsigned i)
{
	if (i == VDEV_RNG)
		return cfg->rng.enabled ? &cfg->rng.v : NULL;
	if (i == VDEV_CONSOLE)
		return cfg->nr_ports ? &cfg->console_v : NULL;
	if (i == VDEV_SCSI)
		return cfg->nr_luns ? &cfg->scsi_v : NULL;
	if (i == VDEV_BALLOON)
		return cfg->balloon.enabled ? &cfg->balloon.v : NULL;
	if (i == VDEV_VSOCK)
		return cfg->vsock.enabled ? &cfg->vsock.v : NULL;
	if (i >= VDEV_FS0)
		return i - VDEV_FS0 < cfg->nr_shares ? &cfg->shares[i - VDEV_FS0].v : NULL;
	if (i >= VDEV_NET0)
		return i - VDEV_NET0 < cfg->nr_nets ? &cfg->nets[i - VDEV_NET0].v : NULL;
	return i - VDEV_DISK0 < cfg->nr_disks ? &cfg->disks[i - VDEV_DISK0].v : NULL;
}

/* The device in slot i, once made. */
static struct virtio_dev *vdev_of(struct vm_devices *d, unsigned i)
{
	if (i == VDEV_RNG)
		return d->rng ? &d->rng->vdev : NULL;
	if (i == VDEV_CONSOLE)
		return d->console ? &d->console->vdev : NULL;
	if (i == VDEV_SCSI)
		return d->scsi ? &d->scsi->vdev : NULL;
	if (i == VDEV_BALLOON)
		return d->balloon ? &d->balloon->vdev : NULL;
	if (i == VDEV_VSOCK)
		return d->vsock ? &d->vsock->vdev : NULL;
	if (i >= VDEV_FS0)
		return i - VDEV_FS0 < d->nr_shares && d->shares[i - VDEV_FS0].fs_init
			       ? &d->shares[i - VDEV_FS0].fs.vdev
			       : NULL;
	if (i >= VDEV_NET0)
		return i - VDEV_NET0 < d->nr_nets && d->nets[i - VDEV_NET0].net_init
			       ? &d->nets[i - VDEV_NET0].net.vdev
			       : NULL;
	if (i - VDEV_DISK0 < d->nr_disks && d->disks[i - VDEV_DISK0].blk_init)
		return &d->disks[i - VDEV_DISK0].blk.vdev;
	return NULL;
}

/* Opens and locks one image: a failure is the user's (exit 2). */
static int open_image(struct vm *vm, struct disk *disk, const char *path, bool readonly,
		      const char *origin)
{
	int ret;

	disk->fd = -1;
	if ((ret = disk_open(disk, path, readonly, origin)))
		vm->bad_config = ret != -ENOMEM;
	return ret;
}

/* The disks: each image opened and locked, then its device on its own I/O thread. */
static int create_disks(struct vm_devices *d, const struct vm_config *cfg)
{
	struct vm *vm = d->vm;
	int ret;

	if (!cfg->nr_disks)
		return 0;
	if (!(d->disks = calloc(cfg->nr_disks, sizeof(*d->disks))))
		return -ENOMEM;
	for (unsigned i = 0; i < cfg->nr_disks; i++) {
		const struct disk_config *c = &cfg->disks[i];
		struct disk_slot *s = &d->disks[i];
		/* One queue per vCPU unless the user says: each vCPU then has its own. */
		unsigned queues = c->queues ? c->queues : cfg->cpus;
		char name[16];

		d->nr_disks = i + 1;
		if ((ret = open_image(vm, &s->disk, c->path, c->readonly, c->origin)))
			return ret;
		if ((ret = event_loop_init(&s->loop, "disk")))
			return ret;
		s->loop.role = SANDBOX_DISK;
		s->loop_init = true;
		snprintf(name, sizeof(name), "blk%u", i);
		if (queues > BLK_MAX_QUEUES)
			queues = BLK_MAX_QUEUES;
		if ((ret = blk_init(&s->blk, name, &s->disk, c->serial, queues, vm->mem, &s->loop)))
			return ret;
		s->blk_init = true;
	}
	return 0;
}

/* The SCSI controller: every LUN's image opened and locked, then the device on its I/O thread. */
static int create_scsi(struct vm_devices *d, const struct vm_config *cfg)
{
	struct disk *luns[CONFIG_MAX_LUNS];
	struct vm *vm = d->vm;
	unsigned queues = cfg->cpus < SCSI_MAX_REQ_QUEUES ? cfg->cpus : SCSI_MAX_REQ_QUEUES;
	int ret;

	if (!cfg->nr_luns)
		return 0;
	if (!(d->luns = calloc(cfg->nr_luns, sizeof(*d->luns))))
		return -ENOMEM;
	for (unsigned i = 0; i < cfg->nr_luns; i++) {
		d->nr_luns = i + 1;
		luns[i] = &d->luns[i];
		if ((ret = open_image(vm, &d->luns[i], cfg->luns[i].path, cfg->luns[i].readonly,
				      cfg->luns[i].origin)))
			return ret;
	}
	if ((ret = event_loop_init(&d->scsi_loop, "scsi")))
		return ret;
	d->scsi_loop.role = SANDBOX_DISK;
	d->scsi_loop_init = true;
	if (!(d->scsi = calloc(1, sizeof(*d->scsi))))
		return -ENOMEM;
	ret = scsi_init(d->scsi, "scsi0", luns, cfg->nr_luns, queues, vm->mem, &d->scsi_loop);
	if (ret) {
		free(d->scsi);
		d->scsi = NULL;
	}
	return ret;
}

/* A MAC for a --net without mac=: locally administered (52:54:00, as QEMU's) and the same on
 * every run of the same configuration, from the tap's name and the device's place. */
static void default_mac(uint8_t mac[6], const char *tap, unsigned index)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (const char *p = tap; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	h = (h ^ index) * 16777619u;
	mac[0] = 0x52;
	mac[1] = 0x54;
	mac[2] = 0x00;
	mac[3] = (uint8_t)(h >> 16);
	mac[4] = (uint8_t)(h >> 8);
	mac[5] = (uint8_t)h;
}

/* vhost=on: /dev/vhost-net for each queue pair, opened now, before the sandbox closes the door.
 * A host without it is told so: vmm does not quietly fall back to its own datapath. */
static int open_vhost_net(const struct net_config *c, unsigned pairs, int *fds)
{
	for (unsigned i = 0; i < pairs; i++) {
		if ((fds[i] = open("/dev/vhost-net", O_RDWR | O_CLOEXEC)) < 0) {
			int ret = -errno;

			log_error("%s: vhost=on: /dev/vhost-net: %s%s", c->origin, strerror(-ret),
				  ret == -ENOENT ? " (load the module: modprobe vhost_net; or vhost=off)"
				  : ret == -EACCES ? " (vmm's user needs read and write access to it)"
						   : "");
			while (i)
				close(fds[--i]);
			return ret;
		}
	}
	return 0;
}

/* The network devices: each tap opened (or made), then its device on its own I/O thread. */
static int create_nets(struct vm_devices *d, const struct vm_config *cfg)
{
	struct vm *vm = d->vm;
	int ret;

	if (!cfg->nr_nets)
		return 0;
	if (!(d->nets = calloc(cfg->nr_nets, sizeof(*d->nets))))
		return -ENOMEM;
	static_assert(CONFIG_MAX_NET_QUEUES <= TAP_MAX_QUEUES, "--net queues= must fit a tap");
	for (unsigned i = 0; i < cfg->nr_nets; i++) {
		const struct net_config *c = &cfg->nets[i];
		struct net_slot *s = &d->nets[i];
		char name[16];
		uint8_t mac[6];

		d->nr_nets = i + 1;
		if ((ret = tap_open(&s->tap, c->tap, c->queues ? c->queues : 1, c->origin))) {
			vm->bad_config = ret != -ENOMEM;
			return ret;
		}
		s->tap_open = true;
		if (c->mac_set)
			memcpy(mac, c->mac, 6);
		else
			default_mac(mac, s->tap.name, i);
		if ((ret = event_loop_init(&s->loop, "net")))
			return ret;
		s->loop.role = SANDBOX_NET;
		s->loop_init = true;
		snprintf(name, sizeof(name), "net%u", i);
		if ((ret = net_init(&s->net, name, &s->tap, mac, c->mtu, vm->mem, &s->loop)))
			return ret;
		s->net_init = true;
		if (c->vhost) {
			int fds[TAP_MAX_QUEUES];

			if ((ret = open_vhost_net(c, s->tap.nr_queues, fds))) {
				vm->bad_config = ret != -ENOMEM;
				return ret;
			}
			if ((ret = net_set_vhost(&s->net, fds)))
				return ret;
		}
		log_info("%s: %s, MAC %02x:%02x:%02x:%02x:%02x:%02x, %u queue pair(s)%s", name,
			 s->tap.name, mac[0], mac[1], mac[2], mac[3], mac[4], mac[5],
			 s->tap.nr_queues, c->vhost ? ", vhost-net" : "");
	}
	return 0;
}

/* The shared directories: each served by its own device on its own I/O thread. */
static int create_shares(struct vm_devices *d, const struct vm_config *cfg)
{
	struct vm *vm = d->vm;
	int ret;

	if (!cfg->nr_shares)
		return 0;
	if (!(d->shares = calloc(cfg->nr_shares, sizeof(*d->shares))))
		return -ENOMEM;
	for (unsigned i = 0; i < cfg->nr_shares; i++) {
		const struct fs_config *c = &cfg->shares[i];
		struct fs_slot *s = &d->shares[i];
		char name[16];

		d->nr_shares = i + 1;
		if ((ret = event_loop_init(&s->loop, "fs")))
			return ret;
		s->loop.role = SANDBOX_FS;
		s->loop_init = true;
		snprintf(name, sizeof(name), "fs%u", i);
		if ((ret = v9p_init(&s->fs, name, c->path, c->tag, c->readonly, c->origin, vm->mem,
				    &s->loop))) {
			vm->bad_config = ret != -ENOMEM;
			return ret;
		}
		s->fs_init = true;
	}
	return 0;
}

/* ---- Before KVM: what devices_create will open ---- */

/* Where a console port's file or socket is to be made, as open(O_CREAT) and bind(2) will find it:
 * a file that exists must be writable and no directory; else its directory must be writable. By
 * access(2), not by opening: a FIFO's reader would see the end of its input. A socket file that
 * exists is left to bind, which replaces a stale one. */
static int check_creatable(const char *path, bool is_socket, const char *origin)
{
	const char *slash = strrchr(path, '/');
	char dir[PATH_MAX];
	struct stat st;
	int ret = 0;

	if (!stat(path, &st)) {
		if (!is_socket && S_ISDIR(st.st_mode))
			ret = -EISDIR;
		else if (!is_socket && access(path, W_OK))
			ret = -errno;
	} else if (errno != ENOENT) {
		ret = -errno;
	} else {
		int len = slash ? (int)(slash - path) : 0;

		/* "/x": "/", "x": ".", "a/b": "a" */
		snprintf(dir, sizeof(dir), "%.*s", len ? len : 1, slash ? path : ".");
		if (access(dir, W_OK | X_OK))
			ret = -errno;
	}
	if (ret)
		log_error("%s: %s", origin, strerror(-ret));
	return ret;
}

/* Images open so far, to find one given twice. */
struct image_check {
	struct disk d[CONFIG_MAX_DISKS + CONFIG_MAX_LUNS];
	const char *origin[CONFIG_MAX_DISKS + CONFIG_MAX_LUNS];
	unsigned n;
};

/* Opens and locks one more image as create_disks and create_scsi will, unless it is one already
 * open and one of the two may write it: our own lock would call it "in use by another process".
 * Read-only uses share an image, as their locks do. */
static int check_image(struct image_check *c, const char *path, bool readonly, const char *origin)
{
	int ret;

	for (unsigned j = 0; j < c->n; j++) {
		if ((!readonly || !c->d[j].readonly) && disk_same_file(&c->d[j], path)) {
			log_error("%s: the same image as %s, given twice: only readonly=on uses "
				  "may share an image",
				  origin, c->origin[j]);
			return -EINVAL;
		}
	}
	if ((ret = disk_open(&c->d[c->n], path, readonly, origin)))
		return ret;
	disk_warn_size(&c->d[c->n], origin);
	c->origin[c->n++] = origin;
	return 0;
}

static int check_images(const struct vm_config *cfg)
{
	struct image_check c = { .n = 0 };
	int ret = 0;

	for (unsigned i = 0; i < cfg->nr_disks && !ret; i++)
		ret = check_image(&c, cfg->disks[i].path, cfg->disks[i].readonly,
				  cfg->disks[i].origin);
	for (unsigned i = 0; i < cfg->nr_luns && !ret; i++)
		ret = check_image(&c, cfg->luns[i].path, cfg->luns[i].readonly,
				  cfg->luns[i].origin);
	while (c.n)
		disk_close(&c.d[--c.n]);
	return ret;
}

/* Each tap by name, opened as create_nets will, and closed. A tap to create is made only there:
 * made here too, there would be two. */
static int check_taps(const struct vm_config *cfg)
{
	struct tap t;
	int ret;

	for (unsigned i = 0; i < cfg->nr_nets; i++) {
		const struct net_config *c = &cfg->nets[i];
		int fd;

		if (c->vhost) {
			if ((ret = open_vhost_net(c, 1, &fd)))
				return ret;
			close(fd);
		}
		if (!c->tap[0])
			continue;
		if ((ret = tap_open(&t, c->tap, c->queues ? c->queues : 1, c->origin)))
			return ret;
		tap_close(&t);
	}
	return 0;
}

int devices_check(const struct vm_config *cfg)
{
	int ret;

	/* By access(2), not by opening: a FIFO's writer would lose its reader. */
	if (cfg->rng.enabled && cfg->rng.source && access(cfg->rng.source, R_OK)) {
		ret = -errno;
		log_error("%s: %s", cfg->rng.origin, strerror(-ret));
		return ret;
	}
	for (unsigned i = 0; i < cfg->nr_ports; i++) {
		const struct console_port_config *p = &cfg->ports[i];

		if ((p->mode == CONS_FILE || p->mode == CONS_SOCKET) &&
		    (ret = check_creatable(p->path, p->mode == CONS_SOCKET, p->origin)))
			return ret;
	}
	for (unsigned i = 0; i < cfg->nr_shares; i++) {
		/* Opened as create_shares will (a detached clone where vmm may), and closed. */
		const struct fs_config *f = &cfg->shares[i];
		struct p9_server srv;

		if ((ret = p9_open(&srv, "fs", f->path, f->readonly, f->origin)))
			return ret;
		p9_close(&srv);
	}
	if (cfg->vsock.enabled) {
		int fd;

		if ((ret = vsock_open_vhost(cfg->vsock.cid, cfg->vsock.origin, &fd)))
			return ret;
		close(fd);
	}
	if ((ret = check_images(cfg)))
		return ret;
	return check_taps(cfg);
}

int devices_mmio_layout(const struct vm_config *cfg, struct boot_mmio_dev out[VIRTIO_MMIO_MAX])
{
	static const uint32_t gsis[VIRTIO_MMIO_MAX] = VIRTIO_MMIO_GSIS;
	int n = 0;

	for (unsigned i = 0; i < VDEV_MAX; i++) {
		const struct virtio_opts *v = vdev_opts(cfg, i);

		if (!v || config_transport(cfg, v) != TRANSPORT_MMIO)
			continue;
		if (n == VIRTIO_MMIO_MAX) {
			log_error("more than %d virtio-mmio devices: use transport=pci for some",
				  VIRTIO_MMIO_MAX);
			return -EINVAL;
		}
		out[n] = (struct boot_mmio_dev){ VIRTIO_MMIO_BASE + (uint64_t)n * VIRTIO_MMIO_SIZE,
						 VIRTIO_MMIO_SIZE, gsis[n] };
		n++;
	}
	return n;
}

void devices_guest_reset(struct vm *vm)
{
	struct vm_devices *d = vm->dev;

	if (d && d->on_reboot == REBOOT_RESTART) {
		log_info("the guest reset: restarting it (--on-reboot restart)");
		vm_request_restart(vm);
	} else {
		vm_request_stop(vm, VMM_EXIT_OK);
	}
}

/* What the guest asks of the machine (on a vCPU). */
static void devices_platform_event(void *opaque, enum platform_event ev, int status)
{
	struct vm_devices *d = opaque;

	switch (ev) {
	case PLATFORM_POWEROFF:
		vm_request_stop(d->vm, VMM_EXIT_OK);
		break;
	case PLATFORM_RESET:
		devices_guest_reset(d->vm);
		break;
	case PLATFORM_EXIT:
		vm_request_stop(d->vm, status);
		break;
	case PLATFORM_CRASH_LOADED:
		log_warn("pvpanic: the guest panicked; its crash kernel takes over");
		break;
	case PLATFORM_PANIC:
		if (atomic_load(&d->vm->timed_out)) {
			/* The panic --timeout's NMI asked for: Linux writes its backtrace to the
			 * console after it tells pvpanic (printk cannot write from an NMI), so the
			 * guest keeps the rest of its time to report (vm_run stops it). */
			log_error("pvpanic: the guest panicked (--timeout's NMI)");
		} else if (d->on_panic == PANIC_PAUSE) {
			log_error("pvpanic: the guest panicked: pausing it (--on-panic pause)");
			vm_request_pause(d->vm);
		} else if (d->on_panic == PANIC_RESTART) {
			log_error("pvpanic: the guest panicked: restarting it (--on-panic restart)");
			vm_request_restart(d->vm);
		} else {
			log_error("pvpanic: the guest panicked");
			vm_request_stop(d->vm, VMM_EXIT_PANIC);
		}
		break;
	}
}

/* The console's two callbacks share one opaque pointer: the devices. */
static int devices_serial_input(void *opaque, const uint8_t *buf, size_t len)
{
	struct vm_devices *d = opaque;

	return uart_receive_all(&d->uart, buf, len);
}

static void devices_quit(void *opaque)
{
	struct vm_devices *d = opaque;

	log_info("Ctrl-A x: stopping the guest");
	vm_request_stop(d->vm, VMM_EXIT_QUIT);
}

static const enum console_backend cons_backend[] = {
	[CONS_NONE] = CONSOLE_NONE, [CONS_STDIO] = CONSOLE_STDIO, [CONS_PTY] = CONSOLE_PTY,
	[CONS_FILE] = CONSOLE_FILE, [CONS_SOCKET] = CONSOLE_SOCKET,
};

/* Makes the virtio device types the configuration asks for. Their backends open files, sockets and
 * terminals: a failure there is the user's (exit 2), flagged in vm->bad_config. */
static int create_virtio_types(struct vm_devices *d, const struct vm_config *cfg)
{
	struct vm *vm = d->vm;
	int ret;

	if (cfg->rng.enabled) {
		if (!(d->rng = calloc(1, sizeof(*d->rng))))
			return -ENOMEM;
		if ((ret = rng_init(d->rng, "rng0", cfg->rng.source, cfg->rng.origin, vm->mem,
				    &d->io))) {
			vm->bad_config = ret != -ENOMEM;
			return ret;
		}
	}
	if (cfg->balloon.enabled) {
		struct balloon_config bc = {
			.size = cfg->balloon.size,
			.deflate_on_oom = cfg->balloon.deflate_on_oom,
			.free_page_reporting = cfg->balloon.free_page_reporting,
			.stats_period = cfg->balloon.stats_period,
		};

		if (!(d->balloon = calloc(1, sizeof(*d->balloon))))
			return -ENOMEM;
		if ((ret = balloon_init(d->balloon, "balloon0", &bc, vm->mem, &d->io)))
			return ret;
	}
	if (cfg->vsock.enabled) {
		int fd;

		if (!(d->vsock = calloc(1, sizeof(*d->vsock))))
			return -ENOMEM;
		if ((ret = vsock_open_vhost(cfg->vsock.cid, cfg->vsock.origin, &fd))) {
			vm->bad_config = ret != -ENOMEM;
			return ret;
		}
		if ((ret = vsock_init(d->vsock, "vsock0", cfg->vsock.cid, fd, vm->mem, &d->io)))
			return ret;
		log_info("vsock0: CID %u, on vhost-vsock", cfg->vsock.cid);
	}
	if (cfg->nr_ports) {
		struct console_port_cfg ports[CONSOLE_MAX_PORTS];

		if (cfg->nr_ports > CONSOLE_MAX_PORTS) {
			log_error("--console: at most %d named ports", CONSOLE_MAX_PORTS - 1);
			vm->bad_config = true;
			return -EINVAL;
		}
		for (unsigned i = 0; i < cfg->nr_ports; i++)
			ports[i] = (struct console_port_cfg){ cfg->ports[i].name,
							      cons_backend[cfg->ports[i].mode],
							      cfg->ports[i].path,
							      cfg->ports[i].origin };
		if (!(d->console = calloc(1, sizeof(*d->console))))
			return -ENOMEM;
		if ((ret = console_init(d->console, "console0", ports, cfg->nr_ports, vm->mem, &d->io,
					devices_quit, d))) {
			vm->bad_config = ret != -ENOMEM;
			return ret;
		}
	}
	if ((ret = create_disks(d, cfg)) || (ret = create_scsi(d, cfg)) ||
	    (ret = create_nets(d, cfg)))
		return ret;
	return create_shares(d, cfg);
}

/* Puts each virtio device on its transport: PCI slots in order, virtio-mmio windows as
 * devices_mmio_layout laid them out. */
static int attach_virtio(struct vm_devices *d, const struct vm_config *cfg)
{
	struct boot_mmio_dev mmio[VIRTIO_MMIO_MAX];
	int n = 0, ret;

	if (devices_mmio_layout(cfg, mmio) < 0)
		return -EINVAL;
	for (unsigned i = 0; i < VDEV_MAX; i++) {
		const struct virtio_opts *v = vdev_opts(cfg, i);
		struct virtio_dev *vdev = vdev_of(d, i);
		bool legacy;

		if (!v || !vdev)
			continue;
		legacy = config_legacy(cfg, v);
		/* No transitional PCI ID exists for a socket device (4.1.2.1): --legacy leaves it
		 * modern there (legacy=on on the device itself is refused by config_parse). */
		if (i == VDEV_VSOCK && config_transport(cfg, v) == TRANSPORT_PCI)
			legacy = false;
		if (config_transport(cfg, v) == TRANSPORT_PCI) {
			ret = virtio_pci_create(&d->pci, vdev, legacy, &d->vpci[i]);
		} else {
			if (!(d->vmmio[i] = calloc(1, sizeof(*d->vmmio[i]))))
				return -ENOMEM;
			ret = virtio_mmio_create(d->vmmio[i], d->vm, vdev, mmio[n].base, mmio[n].gsi,
						 legacy);
			n++;
		}
		if (ret) {
			log_error("%s: cannot attach to its transport: %s", vdev->name,
				  strerror(-ret));
			return ret;
		}
	}
	return 0;
}

int devices_create(struct vm *vm, const struct vm_config *cfg, struct irq_line irq,
		   const struct serial_host *serial)
{
	struct vm_devices *d = calloc(1, sizeof(*d));
	struct irq_line com1 = irq, ged = irq;
	int ret;

	if (!d)
		return -ENOMEM;
	vm->dev = d;
	d->vm = vm;
	ged.gsi = ARCH_PLATFORM_GSI;
	d->on_panic = cfg->on_panic;
	d->on_reboot = cfg->on_reboot;
	platform_init(&d->platform, devices_platform_event, d, ged);
	if ((ret = event_loop_init(&d->io, "io")))
		return ret;
	d->io_init = true;
	com1.gsi = ARCH_UART_GSI;
	if ((ret = uart_init(&d->uart, com1, serial->out, serial->log, &d->io))) {
		log_error("serial: %s", strerror(-ret));
		return ret;
	}
	d->uart_ready = true;
	if ((ret = platform_register(&d->platform, &vm->pio, &vm->mmio)) ||
	    (ret = bus_register(ARCH_UART_MMIO ? &vm->mmio : &vm->pio, ARCH_UART_ADDR,
				UART_NR_REGS, uart_io, &d->uart, "ttyS0"))) {
		log_error("platform devices: %s", strerror(-ret));
		return ret;
	}
	if (serial->in >= 0) { /* stdin (the user's terminal, with its escapes) or a pty */
		if ((ret = term_init(&d->term, serial->in, serial->in == STDIN_FILENO,
				     devices_serial_input, devices_quit, d)))
			return ret;
		d->has_term = true;
	}
	if ((ret = pci_host_init(&d->pci, vm))) {
		log_error("PCI host bridge: %s", strerror(-ret));
		return ret;
	}
	d->pci_init = true;
	if ((ret = create_virtio_types(d, cfg)))
		return ret;
	return attach_virtio(d, cfg);
}

/* fn on every event loop there is: the device threads. */
static void loops_each(struct vm_devices *d, void (*fn)(struct event_loop *))
{
	if (d->io_init)
		fn(&d->io);
	for (unsigned i = 0; i < d->nr_disks; i++)
		if (d->disks[i].loop_init)
			fn(&d->disks[i].loop);
	if (d->scsi_loop_init)
		fn(&d->scsi_loop);
	for (unsigned i = 0; i < d->nr_nets; i++)
		if (d->nets[i].loop_init)
			fn(&d->nets[i].loop);
	for (unsigned i = 0; i < d->nr_shares; i++)
		if (d->shares[i].loop_init)
			fn(&d->shares[i].loop);
}

int devices_start(struct vm *vm)
{
	struct vm_devices *d = vm->dev;
	int ret;

	if ((ret = event_loop_start(&d->io)))
		return ret;
	for (unsigned i = 0; i < d->nr_disks; i++) {
		if (d->disks[i].loop_init && (ret = event_loop_start(&d->disks[i].loop)))
			return ret;
	}
	if (d->scsi_loop_init && (ret = event_loop_start(&d->scsi_loop)))
		return ret;
	for (unsigned i = 0; i < d->nr_nets; i++) {
		if (d->nets[i].loop_init && (ret = event_loop_start(&d->nets[i].loop)))
			return ret;
	}
	for (unsigned i = 0; i < d->nr_shares; i++) {
		if (d->shares[i].loop_init && (ret = event_loop_start(&d->shares[i].loop)))
			return ret;
	}
	if (d->console && (ret = console_start(d->console)))
		return ret;
	return d->has_term ? term_start(&d->term) : 0;
}

void devices_pause(struct vm *vm)
{
	if (vm->dev)
		loops_each(vm->dev, event_loop_pause);
}

void devices_resume(struct vm *vm)
{
	if (vm->dev)
		loops_each(vm->dev, event_loop_resume);
}

void devices_reset(struct vm *vm)
{
	struct vm_devices *d = vm->dev;

	if (!d)
		return;
	for (unsigned i = 0; i < VDEV_MAX; i++) {
		struct virtio_dev *v = vdev_of(d, i);

		if (!v)
			continue;
		pthread_mutex_lock(&v->lock);
		virtio_set_status(v, 0);
		pthread_mutex_unlock(&v->lock);
	}
	if (d->pci_init)
		pci_host_reset(&d->pci);
	if (d->uart_ready)
		uart_reset(&d->uart);
}

void devices_power_button(struct vm *vm)
{
	if (vm->dev)
		platform_power_button(&vm->dev->platform);
}

void devices_resize(struct vm *vm)
{
	struct vm_devices *d = vm->dev;

	if (d && d->console)
		console_resize(d->console);
}

struct virtio_dev *devices_next(struct vm *vm, unsigned *i, bool *mmio)
{
	struct vm_devices *d = vm->dev;

	while (d && *i < VDEV_MAX) {
		unsigned k = (*i)++;
		struct virtio_dev *v = vdev_of(d, k);

		if (v) {
			*mmio = d->vmmio[k] != NULL;
			return v;
		}
	}
	return NULL;
}

struct balloon_dev *devices_balloon(struct vm *vm)
{
	return vm->dev ? vm->dev->balloon : NULL;
}

void devices_log_state(struct vm *vm)
{
	struct vm_devices *d = vm->dev;

	for (unsigned i = 0; d && i < VDEV_MAX; i++) {
		struct virtio_dev *vdev = vdev_of(d, i);

		if (vdev)
			virtio_log_state(vdev);
	}
}

void devices_stop(struct vm *vm)
{
	struct vm_devices *d = vm->dev;

	if (!d)
		return;
	uart_shutdown(&d->uart); /* unblocks the input thread if the guest stopped reading */
	if (d->has_term) {
		term_stop(&d->term);
		d->has_term = false;
	}
	if (d->console)
		console_stop(d->console);
	loops_each(d, event_loop_stop);
}

void devices_destroy(struct vm *vm)
{
	struct vm_devices *d = vm->dev;

	if (!d)
		return;
	devices_stop(vm);
	/* Transports first (they unbind the eventfds), then the types, then the loop they used. */
	for (unsigned i = 0; i < VDEV_MAX; i++) {
		virtio_pci_destroy(d->vpci[i]);
		if (d->vmmio[i])
			virtio_mmio_destroy(d->vmmio[i]);
		free(d->vmmio[i]);
	}
	if (d->rng) {
		rng_destroy(d->rng);
		free(d->rng);
	}
	if (d->console) {
		console_destroy(d->console);
		free(d->console);
	}
	if (d->balloon) {
		balloon_destroy(d->balloon);
		free(d->balloon);
	}
	if (d->vsock) {
		vsock_destroy(d->vsock);
		free(d->vsock);
	}
	for (unsigned i = 0; i < d->nr_disks; i++) {
		struct disk_slot *s = &d->disks[i];

		if (s->blk_init)
			blk_destroy(&s->blk);
		if (s->loop_init)
			event_loop_destroy(&s->loop);
		disk_close(&s->disk);
	}
	free(d->disks);
	if (d->scsi) {
		scsi_destroy(d->scsi);
		free(d->scsi);
	}
	if (d->scsi_loop_init)
		event_loop_destroy(&d->scsi_loop);
	for (unsigned i = 0; i < d->nr_luns; i++)
		disk_close(&d->luns[i]);
	free(d->luns);
	for (unsigned i = 0; i < d->nr_nets; i++) {
		struct net_slot *s = &d->nets[i];

		if (s->net_init)
			net_destroy(&s->net);
		if (s->loop_init)
			event_loop_destroy(&s->loop);
		if (s->tap_open)
			tap_close(&s->tap);
	}
	free(d->nets);
	for (unsigned i = 0; i < d->nr_shares; i++) {
		struct fs_slot *s = &d->shares[i];

		if (s->fs_init)
			v9p_destroy(&s->fs);
		if (s->loop_init)
			event_loop_destroy(&s->loop);
	}
	free(d->shares);
	if (d->pci_init)
		pci_host_destroy(&d->pci);
	if (d->uart_ready)
		uart_destroy(&d->uart); /* writes what output waits, then leaves the loop */
	if (d->io_init)
		event_loop_destroy(&d->io);
	platform_destroy(&d->platform);
	free(d);
	vm->dev = NULL;
}
