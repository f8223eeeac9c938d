/* The VM description: one struct, filled from the config file and then the command line. */
#ifndef VMM_CONFIG_H
#define VMM_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "log.h"

#define CONFIG_DEFAULT_CMDLINE "console=ttyS0"
#define CONFIG_DEFAULT_MEMORY  (512ULL << 20)
#define CONFIG_MIN_MEMORY      (16ULL << 20)
#define CONFIG_MAX_MEMORY      (1ULL << 40)
#define CONFIG_MAX_CPUS        254 /* xAPIC IDs in the MADT; KVM's own limit is checked later */
#define CONFIG_MAX_DISKS       16  /* --disk */
#define CONFIG_MAX_LUNS        16  /* --scsi */
#define CONFIG_MAX_QUEUES      64  /* --disk queues= */
#define CONFIG_SERIAL_MAX      20  /* --disk serial=: virtio-blk's ID string */
#define CONFIG_MAX_NETS        8   /* --net */
#define CONFIG_MAX_NET_QUEUES  16  /* --net queues=: queue pairs */
#define CONFIG_IFNAME_MAX      16  /* IFNAMSIZ, the NUL included */
#define CONFIG_MAX_SHARES      8   /* --fs */
#define CONFIG_TAG_MAX         255 /* --fs tag=: virtio-9p's mount tag, in bytes */
/* A transitional virtio-pci device's configuration sits in its legacy I/O BAR, which decodes 256
 * bytes at most: 24 of registers, the tag's le16 length, then the tag. */
#define CONFIG_TAG_MAX_LEGACY_PCI (256 - 24 - 2)

enum serial_mode { SERIAL_STDIO, SERIAL_FILE, SERIAL_NONE, SERIAL_PTY };
/* --on-panic: what a guest's panic (pvpanic, or KVM's crash event) does. */
enum panic_action { PANIC_EXIT, PANIC_PAUSE, PANIC_RESTART };
/* --on-reboot: what the guest's reset (ACPI, i8042, vm.reboot) does. */
enum reboot_action { REBOOT_EXIT, REBOOT_RESTART };
enum virtio_transport { TRANSPORT_PCI, TRANSPORT_MMIO };
/* A console port's host side. */
enum cons_mode { CONS_NONE, CONS_STDIO, CONS_PTY, CONS_FILE, CONS_SOCKET };

/* What every virtio device option takes besides its own keys: transport=pci|mmio, legacy=on|off.
 * Unset values (-1) follow --transport and --legacy. */
struct virtio_opts {
	int transport; /* enum virtio_transport, or -1 */
	int legacy;    /* 0, 1, or -1 */
};

struct rng_config {
	bool enabled;
	char *source; /* NULL: getrandom(2) */
	char *origin; /* see struct vm_config */
	struct virtio_opts v;
};

struct balloon_opts {
	bool enabled;
	uint64_t size;            /* bytes the balloon asks for at start */
	int deflate_on_oom;       /* on/off */
	int free_page_reporting;  /* on/off */
	unsigned stats_period;    /* seconds; 0: no statistics */
	struct virtio_opts v;
};

struct disk_config {
	char *path;
	char *origin; /* see struct vm_config */
	bool readonly;
	char *serial;    /* NULL: none; at most 20 bytes (virtio-blk GET_ID) */
	unsigned queues; /* 0: one per vCPU */
	struct virtio_opts v;
};

struct scsi_lun_config {
	char *path;
	char *origin; /* see struct vm_config */
	bool readonly;
};

struct net_config {
	char *tap;     /* "" : create one */
	char *origin;  /* see struct vm_config */
	bool tap_set;
	uint8_t mac[6];
	bool mac_set;    /* else a stable locally administered address is made up */
	unsigned queues; /* queue pairs, 1..CONFIG_MAX_NET_QUEUES; 0: 1 */
	unsigned mtu;    /* 0: the tap's */
	int vhost;       /* 1: the queues are served by the kernel's vhost-net, 0 (default): by vmm */
	struct virtio_opts v;
};

struct fs_config {
	char *path; /* the host directory */
	char *origin; /* see struct vm_config */
	char *tag;  /* what the guest mounts */
	bool readonly;
	struct virtio_opts v;
};

/* --vsock: one virtio-vsock device on the kernel's vhost-vsock. */
struct vsock_config {
	bool enabled;
	unsigned cid;  /* the guest's context ID, VSOCK_CID_MIN..VSOCK_CID_MAX; 0: not given */
	char *origin;  /* see struct vm_config: "--vsock cid=N", for the host's refusal of it */
	struct virtio_opts v;
};

struct console_port_config {
	char *name; /* NULL for port 0, the console (hvc0) */
	enum cons_mode mode;
	char *path; /* CONS_FILE, CONS_SOCKET */
	char *origin; /* see struct vm_config */
};

struct vm_config {
	char *kernel;  /* paths are as given on the command line, or made relative to the config */
	char *initrd;  /* file's directory when they came from one; NULL when unset */
	/* Each path (and tap name) has its origin beside it, for what is found wrong with it later
	 * (a file that cannot be opened): "--kernel PATH" or "--disk path=PATH" as the command line
	 * spells it, or "vm.conf:3: kernel 'PATH'", the config file line it came from. */
	char *kernel_origin, *initrd_origin;
	char *cmdline; /* never NULL after config_parse */
	unsigned cpus;
	uint64_t memory;
	enum serial_mode serial;
	char *serial_path;
	char *serial_log; /* --serial stdio|pty,log=FILE: a copy of the output, or NULL */
	char *serial_origin;
	bool serial_set; /* --serial was given: the console cannot take stdio from it */
	enum virtio_transport transport; /* --transport: the default for virtio devices */
	bool legacy;                     /* --legacy: transitional virtio-pci, virtio-mmio v1 */
	struct rng_config rng;
	struct vsock_config vsock;
	/* The virtio console: one device, port 0 first, then the named ports. nr_ports == 0: no
	 * console device. */
	struct console_port_config *ports;
	unsigned nr_ports;
	struct virtio_opts console_v;
	struct disk_config *disks; /* --disk, in order: the guest's vda, vdb, ... */
	unsigned nr_disks;
	struct scsi_lun_config *luns; /* --scsi: LUN 0, 1, ... of one virtio-scsi controller */
	unsigned nr_luns;
	struct virtio_opts scsi_v;
	struct net_config *nets; /* --net, in order: eth0, eth1, ... */
	unsigned nr_nets;
	struct fs_config *shares; /* --fs, in order */
	unsigned nr_shares;
	struct balloon_opts balloon; /* --balloon */
	unsigned timeout; /* seconds; 0 means none */
	enum log_level log_level;
	bool sandbox; /* --sandbox: on unless turned off (docs/security.md) */
	enum panic_action on_panic;
	enum reboot_action on_reboot;
	char *api_socket; /* --api-socket: the control socket's path, or NULL */
	char *dump_dtb;   /* --dump-dtb: where arm64's device tree is written too, or NULL */
	bool help, version; /* --help / --version: main prints and exits 0 */
};

/* Whether the guest may be restarted in place: vmm then keeps what a restart needs. */
static inline bool config_restarts(const struct vm_config *c)
{
	return c->on_reboot == REBOOT_RESTART || c->on_panic == PANIC_RESTART;
}

/* Fills cfg from argv (and the --config file it names, which argv then overrides). On bad input
 * prints one message naming the option, or the file and line, and returns -EINVAL: main exits 2. */
int config_parse(struct vm_config *cfg, int argc, char **argv);
void config_free(struct vm_config *cfg);
/* Sizes like 512M, 2G, 4096, 64K: 0 or -EINVAL (also on overflow). */
int config_parse_size(const char *s, uint64_t *out);
/* The text `vmm --help` prints. */
const char *config_usage(void);
/* The transport and legacy choice for a device, after the defaults. */
enum virtio_transport config_transport(const struct vm_config *cfg, const struct virtio_opts *v);
bool config_legacy(const struct vm_config *cfg, const struct virtio_opts *v);

/* One item of a device option's value, "key=value,key=value,word" (e.g. --serial file=PATH, later
 * --disk path=x,readonly=on). */
struct config_subopt {
	const char *key;
	const char *value; /* NULL for a bare word ("stdio"); "" for "key=" */
};
/* Splits s at commas (",," is a literal comma) and each item at its first '='. On success returns
 * the number of items (>= 1) and sets *items to one allocation the caller frees with free(); the
 * strings live inside it. -EINVAL for an empty item or key (this prints nothing: the caller names
 * the option), -ENOMEM. */
int config_subopts_split(const char *s, struct config_subopt **items);

#endif
