/* The VM description, from the command line and an INI config file.
 *
 * Both spellings of an option go through one table: `--cpus 4` on the command line is `cpus = 4` in
 * the [vm] section, and both end in the same setter. The setter gets a config_src saying where the
 * value came from, which names it in messages and anchors relative paths.
 *
 * Device options (later: `--disk path=x,readonly=on`, one device per `[disk]` section) follow the
 * same pattern one level down: a key table for the device, a sections[] entry whose begin() appends
 * a device to the config, and a `--disk` option whose setter calls begin() and then feeds each item
 * of config_subopts_split() through the same key table. The file reader below tells the handler
 * when a section starts, which inih itself does not, so two `[disk]` sections are two devices.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define STR_(x)       #x
#define STR(x)        STR_(x)

/* Where a value came from. */
struct config_src {
	const char *file; /* the config file as given; NULL for the command line */
	const char *dir;  /* its directory; NULL: relative paths are kept as given (cwd-relative) */
	unsigned line;
	const char *name; /* the option or key, without dashes */
};

enum {
	OPT_FLAG = 1 << 0,      /* takes no value */
	OPT_ARGV_ONLY = 1 << 1, /* not a config file key */
	OPT_EMPTY_OK = 1 << 2,  /* "" means something (an empty kernel command line) */
	OPT_VALUE_OPTIONAL = 1 << 3, /* `--rng` alone, or `--rng source=x` */
};

struct config_option {
	const char *name;
	unsigned flags;
	int (*set)(struct vm_config *cfg, const struct config_src *src, const char *value);
};

static void src_error(const struct config_src *src, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void src_error(const struct config_src *src, const char *fmt, ...)
{
	char msg[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (src->file)
		log_error("%s:%u: %s", src->file, src->line, msg);
	else
		log_error("%s", msg);
}

/* "--cpus '0': why" on the command line, "vm.conf:3: cpus '0': why" in a file. */
static int bad_value(const struct config_src *src, const char *value, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int bad_value(const struct config_src *src, const char *value, const char *fmt, ...)
{
	char why[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	src_error(src, "%s%s '%s': %s", src->file ? "" : "--", src->name, value, why);
	return -EINVAL;
}

static int replace_string(char **field, char *s)
{
	if (!s)
		return -ENOMEM;
	free(*field);
	*field = s;
	return 0;
}

/* A config file usually sits next to the images it names, so its relative paths are taken from
 * its directory: the layout then works from any working directory. */
static int resolve_path(const struct config_src *src, const char *path, char **out)
{
	size_t n;

	if (!src->dir || path[0] == '/') {
		*out = strdup(path);
		return *out ? 0 : -ENOMEM;
	}
	n = strlen(src->dir);
	if (asprintf(out, "%s%s%s", src->dir, n && src->dir[n - 1] == '/' ? "" : "/", path) < 0) {
		*out = NULL;
		return -ENOMEM;
	}
	return 0;
}

/* How a message that comes later (a file that cannot be opened, a tap that is not one) names a
 * value: as the command line spells it, "--kernel PATH" or "--disk path=PATH", or by the config
 * file line it came from, "vm.conf:3: kernel 'PATH'", as bad_value does. */
static int set_origin(char **origin, const struct config_src *src, const char *value)
{
	char *s;
	int n;

	if (src->file)
		n = asprintf(&s, "%s:%u: %s '%s'", src->file, src->line, src->name, value);
	else if (strchr(src->name, ' ')) /* an item of a device option: "disk path" */
		n = asprintf(&s, "--%s=%s", src->name, value);
	else
		n = asprintf(&s, "--%s %s", src->name, value);
	return replace_string(origin, n < 0 ? NULL : s);
}

/* The path, and its origin unless origin is NULL. */
static int set_path(char **field, char **origin, const struct config_src *src, const char *value)
{
	char *path;
	int ret = resolve_path(src, value, &path);

	if (!ret && origin && (ret = set_origin(origin, src, path)))
		free(path);
	return ret ? ret : replace_string(field, path);
}

/* Plain decimal: strtoul would also take a sign, blanks and hex. -EINVAL or -ERANGE. */
static int parse_uint(const char *s, unsigned *out)
{
	unsigned long long v = 0;

	if (!*s)
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		v = v * 10 + (unsigned)(*s - '0');
		if (v > UINT_MAX)
			v = UINT_MAX + 1ULL; /* saturate, but keep checking the syntax */
	}
	if (v > UINT_MAX)
		return -ERANGE;
	*out = (unsigned)v;
	return 0;
}

/* A decimal number in [min, max] for an option, stored only when good: one message naming the
 * option otherwise. */
static int parse_count(const struct config_src *src, const char *value, unsigned min,
		       unsigned max, unsigned *out)
{
	unsigned n;
	int ret = parse_uint(value, &n);

	if (ret == -EINVAL)
		return bad_value(src, value, "not a number");
	if (ret || n < min || n > max)
		return bad_value(src, value, "out of range: must be %u..%u", min, max);
	*out = n;
	return 0;
}

/* Digits, then an optional K/M/G/T (either case, powers of 1024) and an optional "iB" after it.
 * -EINVAL for anything else, -ERANGE if it does not fit in 64 bits. */
static int parse_size(const char *s, uint64_t *out)
{
	static const char suffixes[] = "KMGT";
	const char *p = s, *suffix;
	uint64_t v = 0;
	unsigned shift = 0;
	int overflow = 0;

	if (*p < '0' || *p > '9')
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		unsigned d = (unsigned)(*p - '0');

		if (v > (UINT64_MAX - d) / 10)
			overflow = 1;
		v = v * 10 + d;
	}
	if (*p && (suffix = strchr(suffixes, toupper((unsigned char)*p)))) {
		shift = 10 * (unsigned)(suffix - suffixes + 1);
		p++;
		if (!strcmp(p, "iB"))
			p += 2;
	}
	if (*p)
		return -EINVAL;
	if (overflow || v > UINT64_MAX >> shift)
		return -ERANGE;
	*out = v << shift;
	return 0;
}

int config_parse_size(const char *s, uint64_t *out)
{
	return parse_size(s, out) ? -EINVAL : 0;
}

/* The shortest exact spelling: 16M, 1T, 4097. */
static const char *size_str(uint64_t v, char buf[32])
{
	static const char suffixes[] = "KMGT";

	for (int i = 4; i >= 1; i--) {
		if (v && !(v & ((1ULL << (10 * i)) - 1))) {
			unsigned long long n = v >> (10 * i);

			snprintf(buf, 32, "%llu%c", n, suffixes[i - 1]);
			return buf;
		}
	}
	snprintf(buf, 32, "%llu", (unsigned long long)v);
	return buf;
}

static int set_kernel(struct vm_config *cfg, const struct config_src *src, const char *value)
{
	return set_path(&cfg->kernel, &cfg->kernel_origin, src, value);
}

static int set_initrd(struct vm_config *cfg, const struct config_src *src, const char *value)
{
	/* How the command line drops a config file's initrd. A file named none is ./none. */
	if (!strcmp(value, "none")) {
		free(cfg->initrd);
		free(cfg->initrd_origin);
		cfg->initrd = cfg->initrd_origin = NULL;
		return 0;
	}
	return set_path(&cfg->initrd, &cfg->initrd_origin, src, value);
}

static int set_cmdline(struct vm_config *cfg, const struct config_src *src, const char *value)
{
	return replace_string(&cfg->cmdline, strdup(value));
}

static int set_cpus(struct vm_config *cfg, const struct config_src *src, const char *value)
{
	return parse_count(src, value, 1, CONFIG_MAX_CPUS, &cfg->cpus);
}

static int set_memory(struct vm_config *cfg, const struct config_src *src, const char *value)
{
	char lo[32], hi[32];
	uint64_t size;
	int ret = parse_size(value, &size);

	if (ret == -EINVAL)
		return bad_value(src, value,
				 "not a size: use bytes, or a number with a K, M, G or T suffix");
	if (ret || size < CONFIG_MIN_MEMORY || size > CONFIG_MAX_MEMORY)
		return bad_value(src, value, "out of range: must be %s..%s",
				 size_str(CONFIG_MIN_MEMORY, lo), size_str(CONFIG_MAX_MEMORY, hi));
	/* KVM maps memory in whole pages. */
	if (size & 4095)
		return bad_value(src, value, "not a multiple of 4K");
	cfg->memory = size;
	return 0;
}

/* MODE[,log=FILE]: MODE is stdio, pty, none or file=PATH; a log copies what stdio or pty shows. */
static int set_serial(struct vm_config *cfg, const struct config_src *src, const char *value)
{
	enum serial_mode mode = SERIAL_STDIO;
	struct config_subopt *it;
	char *path = NULL, *log = NULL, *item;
	int n, ret = 0;

	n = config_subopts_split(value, &it);
	if (n == -ENOMEM)
		return n;
	if (n < 1 || n > 2) {
		ret = bad_value(src, value, "use stdio, pty, file=PATH or none, then log=FILE if you like");
	} else if (!it[0].value && !strcmp(it[0].key, "stdio")) {
		mode = SERIAL_STDIO;
	} else if (!it[0].value && !strcmp(it[0].key, "pty")) {
		mode = SERIAL_PTY;
	} else if (!it[0].value && !strcmp(it[0].key, "none")) {
		mode = SERIAL_NONE;
	} else if (!strcmp(it[0].key, "file") && it[0].value && it[0].value[0]) {
		mode = SERIAL_FILE;
		ret = resolve_path(src, it[0].value, &path);
		if (!ret && asprintf(&item, "file=%s", path) > 0) {
			ret = set_origin(&cfg->serial_origin, src, item);
			free(item);
		} else if (!ret) {
			ret = -ENOMEM;
		}
	} else if (!strcmp(it[0].key, "file")) {
		ret = bad_value(src, value, "needs a path: file=PATH");
	} else {
		ret = bad_value(src, value, "unknown serial mode: use stdio, pty, file=PATH or none");
	}
	if (!ret && n == 2) {
		if (strcmp(it[1].key, "log") || !it[1].value || !it[1].value[0])
			ret = bad_value(src, value, "after the mode, only log=FILE");
		else if (mode != SERIAL_STDIO && mode != SERIAL_PTY)
			ret = bad_value(src, value, "log=FILE goes with stdio or pty");
		else
			ret = resolve_path(src, it[1].value, &log);
	}
	if (n > 0)
		free(it);
	if (ret) {
		free(path);
		free(log);
		return ret;
	}
	cfg->serial = mode;
	cfg->serial_set = true;
	free(cfg->serial_path);
	cfg->serial_path = path; /* NULL unless SERIAL_FILE */
	free(cfg->serial_log);
	cfg->serial_log = log;
	return 0;
}

static int set_timeout(struct vm_config *cfg, const struct config_src *src, const char *value)
{
	int ret = parse_uint(value, &cfg->timeout);

	if (ret == -EINVAL)
		return bad_value(src, value, "not a whole number of seconds");
	if (ret)
		return bad_value(src, value, "out of range: must be 0..%u", UINT_MAX);
	return 0;
}

static int set_api_socket(struct vm_config *cfg, const struct config_src *src, const char *value)
{
	if (strlen(value) >= 108) /* sun_path */
		return bad_value(src, value, "too long for a unix socket: at most 107 bytes");
	return set_path(&cfg->api_socket, NULL, src, value);
}

static int set_dump_dtb(struct vm_config *cfg, const struct config_src *src, const char *value)
{
#ifdef __aarch64__
	return set_path(&cfg->dump_dtb, NULL, src, value);
#else
	(void)cfg;
	return bad_value(src, value, "an x86 guest has no device tree (its machine is in ACPI tables)");
#endif
}

static int set_log_level(struct vm_config *cfg, const struct config_src *src, const char *value)
{
	if (log_parse_level(value, &cfg->log_level))
		return bad_value(src, value, "unknown log level: use error, warn, info or debug");
	return 0;
}

static int parse_transport(const struct config_src *src, const char *value, int *out)
{
	if (!strcmp(value, "pci"))
		*out = TRANSPORT_PCI;
	else if (!strcmp(value, "mmio"))
		*out = TRANSPORT_MMIO;
	else
		return bad_value(src, value, "unknown transport: use pci or mmio");
	return 0;
}

/* on/off for keys; a command-line flag (value NULL) means on. */
static int parse_bool(const struct config_src *src, const char *value, int *out)
{
	if (!value || !strcmp(value, "on") || !strcmp(value, "yes") || !strcmp(value, "true"))
		*out = 1;
	else if (!strcmp(value, "off") || !strcmp(value, "no") || !strcmp(value, "false"))
		*out = 0;
	else
		return bad_value(src, value, "use on or off");
	return 0;
}

static int set_on_panic(struct vm_config *cfg, const struct config_src *src, const char *value)
{
	if (!strcmp(value, "exit"))
		cfg->on_panic = PANIC_EXIT;
	else if (!strcmp(value, "pause"))
		cfg->on_panic = PANIC_PAUSE;
	else if (!strcmp(value, "restart"))
		cfg->on_panic = PANIC_RESTART;
	else
		return bad_value(src, value, "use exit, pause or restart");
	return 0;
}

static int set_on_reboot(struct vm_config *cfg, const struct config_src *src, const char *value)
{
	if (!strcmp(value, "exit"))
		cfg->on_reboot = REBOOT_EXIT;
	else if (!strcmp(value, "restart"))
		cfg->on_reboot = REBOOT_RESTART;
	else
		return bad_value(src, value, "use exit or restart");
	return 0;
}

static int set_sandbox(struct vm_config *cfg, const struct config_src *src, const char *value)
{
	int on, ret = parse_bool(src, value, &on);

	if (!ret)
		cfg->sandbox = on;
	return ret;
}

static int set_transport(struct vm_config *cfg, const struct config_src *src, const char *value)
{
	int t = 0, ret = parse_transport(src, value, &t);

	if (!ret)
		cfg->transport = (enum virtio_transport)t;
	return ret;
}

static int set_legacy(struct vm_config *cfg, const struct config_src *src, const char *value)
{
	int on, ret = parse_bool(src, value, &on);

	if (!ret)
		cfg->legacy = on;
	return ret;
}

/* ---- Device options: [rng] and --rng, [console] and --console ---- */

static const struct config_option *find_option(const struct config_option *opts, unsigned n,
					       const char *name, size_t len);

static int set_rng_source(struct vm_config *cfg, const struct config_src *src, const char *value)
{
	return set_path(&cfg->rng.source, &cfg->rng.origin, src, value);
}

static int set_rng_transport(struct vm_config *cfg, const struct config_src *src, const char *value)
{
	return parse_transport(src, value, &cfg->rng.v.transport);
}

static int set_rng_legacy(struct vm_config *cfg, const struct config_src *src, const char *value)
{
	return parse_bool(src, value, &cfg->rng.v.legacy);
}

static int rng_begin(struct vm_config *cfg)
{
	free(cfg->rng.source);
	free(cfg->rng.origin);
	cfg->rng = (struct rng_config){ .enabled = true, .v = { -1, -1 } };
	return 0;
}

static const struct config_option rng_keys[] = {
	{ "source", 0, set_rng_source },
	{ "transport", 0, set_rng_transport },
	{ "legacy", 0, set_rng_legacy },
};

/* ---- [balloon] and --balloon ---- */

static int set_balloon_size(struct vm_config *cfg, const struct config_src *src, const char *value)
{
	if (parse_size(value, &cfg->balloon.size))
		return bad_value(src, value,
				 "not a size: use bytes, or a number with a K, M, G or T suffix");
	return 0;
}

static int set_balloon_oom(struct vm_config *cfg, const struct config_src *src, const char *value)
{
	return parse_bool(src, value, &cfg->balloon.deflate_on_oom);
}

static int set_balloon_reporting(struct vm_config *cfg, const struct config_src *src,
				 const char *value)
{
	return parse_bool(src, value, &cfg->balloon.free_page_reporting);
}

static int set_balloon_stats(struct vm_config *cfg, const struct config_src *src, const char *value)
{
	int ret = parse_uint(value, &cfg->balloon.stats_period);

	if (ret == -EINVAL)
		return bad_value(src, value, "not a whole number of seconds");
	if (ret || cfg->balloon.stats_period > 86400)
		return bad_value(src, value, "out of range: must be 0..86400");
	return 0;
}

static int set_balloon_transport(struct vm_config *cfg, const struct config_src *src,
				 const char *value)
{
	return parse_transport(src, value, &cfg->balloon.v.transport);
}

static int set_balloon_legacy(struct vm_config *cfg, const struct config_src *src,
			      const char *value)
{
	return parse_bool(src, value, &cfg->balloon.v.legacy);
}

static int balloon_begin(struct vm_config *cfg)
{
	cfg->balloon = (struct balloon_opts){ .enabled = true, .v = { -1, -1 } };
	return 0;
}

static const struct config_option balloon_keys[] = {
	{ "size", 0, set_balloon_size },
	{ "deflate_on_oom", 0, set_balloon_oom },
	{ "free_page_reporting", 0, set_balloon_reporting },
	{ "stats_period", 0, set_balloon_stats },
	{ "transport", 0, set_balloon_transport },
	{ "legacy", 0, set_balloon_legacy },
};

/* ---- [vsock] and --vsock ---- */

static int set_vsock_cid(struct vm_config *cfg, const struct config_src *src, const char *value)
{
	/* 0, 1 and 2 are reserved (2 is the host), and so is 0xffffffff (5.10.4). */
	int ret = parse_count(src, value, 3, 0xfffffffe, &cfg->vsock.cid);

	return ret ? ret : set_origin(&cfg->vsock.origin, src, value);
}

static int set_vsock_transport(struct vm_config *cfg, const struct config_src *src,
			       const char *value)
{
	return parse_transport(src, value, &cfg->vsock.v.transport);
}

static int set_vsock_legacy(struct vm_config *cfg, const struct config_src *src, const char *value)
{
	return parse_bool(src, value, &cfg->vsock.v.legacy);
}

static int vsock_begin(struct vm_config *cfg)
{
	free(cfg->vsock.origin);
	cfg->vsock = (struct vsock_config){ .enabled = true, .v = { -1, -1 } };
	return 0;
}

static const struct config_option vsock_keys[] = {
	{ "cid", 0, set_vsock_cid },
	{ "transport", 0, set_vsock_transport },
	{ "legacy", 0, set_vsock_legacy },
};

/* The port the current [console] section or --console option describes: the last one. */
static struct console_port_config *cur_port(struct vm_config *cfg)
{
	return &cfg->ports[cfg->nr_ports - 1];
}

static int set_console_mode(struct vm_config *cfg, const struct config_src *src, const char *value)
{
	struct console_port_config *p = cur_port(cfg);

	if (!strcmp(value, "stdio"))
		p->mode = CONS_STDIO;
	else if (!strcmp(value, "pty"))
		p->mode = CONS_PTY;
	else if (!strcmp(value, "none"))
		p->mode = CONS_NONE;
	else
		return bad_value(src, value,
				 "unknown console mode: use stdio, pty, file=PATH, socket=PATH or none");
	free(p->path);
	free(p->origin);
	p->path = p->origin = NULL;
	return 0;
}

static int set_console_path(struct vm_config *cfg, const struct config_src *src, const char *value,
			    enum cons_mode mode)
{
	struct console_port_config *p = cur_port(cfg);

	p->mode = mode;
	return set_path(&p->path, &p->origin, src, value);
}

static int set_console_file(struct vm_config *cfg, const struct config_src *src, const char *value)
{
	return set_console_path(cfg, src, value, CONS_FILE);
}

static int set_console_socket(struct vm_config *cfg, const struct config_src *src,
			      const char *value)
{
	return set_console_path(cfg, src, value, CONS_SOCKET);
}

static int set_console_name(struct vm_config *cfg, const struct config_src *src, const char *value)
{
	/* The guest makes it a file name under /dev/virtio-ports. */
	if (strchr(value, '/') || !strcmp(value, ".") || !strcmp(value, "..") ||
	    strlen(value) > 127)
		return bad_value(src, value, "not a port name: no '/', at most 127 bytes");
	return replace_string(&cur_port(cfg)->name, strdup(value));
}

static int set_console_transport(struct vm_config *cfg, const struct config_src *src,
				 const char *value)
{
	return parse_transport(src, value, &cfg->console_v.transport);
}

static int set_console_legacy(struct vm_config *cfg, const struct config_src *src,
			      const char *value)
{
	return parse_bool(src, value, &cfg->console_v.legacy);
}

static int console_begin(struct vm_config *cfg)
{
	struct console_port_config *p = realloc(cfg->ports, (cfg->nr_ports + 1) * sizeof(*p));

	if (!p)
		return -ENOMEM;
	cfg->ports = p;
	p[cfg->nr_ports++] = (struct console_port_config){ .mode = CONS_NONE };
	return 0;
}

static const struct config_option console_keys[] = {
	{ "mode", 0, set_console_mode },
	{ "file", 0, set_console_file },
	{ "socket", 0, set_console_socket },
	{ "name", 0, set_console_name },
	{ "transport", 0, set_console_transport },
	{ "legacy", 0, set_console_legacy },
};

/* The device the current [disk] section or --disk option describes: the last one. */
static struct disk_config *cur_disk(struct vm_config *cfg)
{
	return &cfg->disks[cfg->nr_disks - 1];
}

static int set_disk_path(struct vm_config *cfg, const struct config_src *src, const char *value)
{
	return set_path(&cur_disk(cfg)->path, &cur_disk(cfg)->origin, src, value);
}

static int set_disk_readonly(struct vm_config *cfg, const struct config_src *src,
			     const char *value)
{
	int on = 0, ret = parse_bool(src, value, &on);

	cur_disk(cfg)->readonly = on;
	return ret;
}

static int set_disk_serial(struct vm_config *cfg, const struct config_src *src, const char *value)
{
	/* The guest shows it in sysfs: printable ASCII, and it must fit GET_ID's 20 bytes. */
	for (const char *p = value; *p; p++) {
		if (*p < 0x21 || *p > 0x7e)
			return bad_value(src, value, "not a serial: printable ASCII without spaces");
	}
	if (strlen(value) > CONFIG_SERIAL_MAX)
		return bad_value(src, value, "longer than %d bytes", CONFIG_SERIAL_MAX);
	return replace_string(&cur_disk(cfg)->serial, strdup(value));
}

static int set_disk_queues(struct vm_config *cfg, const struct config_src *src, const char *value)
{
	return parse_count(src, value, 1, CONFIG_MAX_QUEUES, &cur_disk(cfg)->queues);
}

static int set_disk_transport(struct vm_config *cfg, const struct config_src *src,
			      const char *value)
{
	return parse_transport(src, value, &cur_disk(cfg)->v.transport);
}

static int set_disk_legacy(struct vm_config *cfg, const struct config_src *src, const char *value)
{
	return parse_bool(src, value, &cur_disk(cfg)->v.legacy);
}

static int disk_begin(struct vm_config *cfg)
{
	struct disk_config *d;

	if (cfg->nr_disks == CONFIG_MAX_DISKS) {
		log_error("more than %d disks", CONFIG_MAX_DISKS);
		return -EINVAL;
	}
	if (!(d = realloc(cfg->disks, (cfg->nr_disks + 1) * sizeof(*d))))
		return -ENOMEM;
	cfg->disks = d;
	d[cfg->nr_disks++] = (struct disk_config){ .v = { -1, -1 } };
	return 0;
}

static const struct config_option disk_keys[] = {
	{ "path", 0, set_disk_path },
	{ "readonly", 0, set_disk_readonly },
	{ "serial", 0, set_disk_serial },
	{ "queues", 0, set_disk_queues },
	{ "transport", 0, set_disk_transport },
	{ "legacy", 0, set_disk_legacy },
};

static struct scsi_lun_config *cur_lun(struct vm_config *cfg)
{
	return &cfg->luns[cfg->nr_luns - 1];
}

static int set_scsi_path(struct vm_config *cfg, const struct config_src *src, const char *value)
{
	return set_path(&cur_lun(cfg)->path, &cur_lun(cfg)->origin, src, value);
}

static int set_scsi_readonly(struct vm_config *cfg, const struct config_src *src,
			     const char *value)
{
	int on = 0, ret = parse_bool(src, value, &on);

	cur_lun(cfg)->readonly = on;
	return ret;
}

static int set_scsi_transport(struct vm_config *cfg, const struct config_src *src,
			      const char *value)
{
	return parse_transport(src, value, &cfg->scsi_v.transport);
}

static int set_scsi_legacy(struct vm_config *cfg, const struct config_src *src, const char *value)
{
	return parse_bool(src, value, &cfg->scsi_v.legacy);
}

static int scsi_begin(struct vm_config *cfg)
{
	struct scsi_lun_config *l;

	if (cfg->nr_luns == CONFIG_MAX_LUNS) {
		log_error("more than %d SCSI disks", CONFIG_MAX_LUNS);
		return -EINVAL;
	}
	if (!(l = realloc(cfg->luns, (cfg->nr_luns + 1) * sizeof(*l))))
		return -ENOMEM;
	cfg->luns = l;
	l[cfg->nr_luns++] = (struct scsi_lun_config){ 0 };
	return 0;
}

static const struct config_option scsi_keys[] = {
	{ "path", 0, set_scsi_path },
	{ "readonly", 0, set_scsi_readonly },
	{ "transport", 0, set_scsi_transport },
	{ "legacy", 0, set_scsi_legacy },
};

/* The share the current [fs] section or --fs option describes: the last one. */
static struct fs_config *cur_fs(struct vm_config *cfg)
{
	return &cfg->shares[cfg->nr_shares - 1];
}

static int set_fs_path(struct vm_config *cfg, const struct config_src *src, const char *value)
{
	return set_path(&cur_fs(cfg)->path, &cur_fs(cfg)->origin, src, value);
}

static int set_fs_tag(struct vm_config *cfg, const struct config_src *src, const char *value)
{
	/* What the guest names in mount(8): printable, no blank, as fstab would need it. */
	if (strlen(value) > CONFIG_TAG_MAX)
		return bad_value(src, value, "a mount tag has at most %d bytes", CONFIG_TAG_MAX);
	for (const char *p = value; *p; p++) {
		if ((unsigned char)*p <= ' ' || *p == 0x7f)
			return bad_value(src, value, "a mount tag has no blanks or control characters");
	}
	return replace_string(&cur_fs(cfg)->tag, strdup(value));
}

static int set_fs_readonly(struct vm_config *cfg, const struct config_src *src, const char *value)
{
	int on = 0, ret = parse_bool(src, value, &on);

	cur_fs(cfg)->readonly = on;
	return ret;
}

static int set_fs_transport(struct vm_config *cfg, const struct config_src *src, const char *value)
{
	return parse_transport(src, value, &cur_fs(cfg)->v.transport);
}

static int set_fs_legacy(struct vm_config *cfg, const struct config_src *src, const char *value)
{
	return parse_bool(src, value, &cur_fs(cfg)->v.legacy);
}

static int fs_begin(struct vm_config *cfg)
{
	struct fs_config *f;

	if (cfg->nr_shares == CONFIG_MAX_SHARES) {
		log_error("more than %d shared directories (--fs)", CONFIG_MAX_SHARES);
		return -EINVAL;
	}
	if (!(f = realloc(cfg->shares, (cfg->nr_shares + 1) * sizeof(*f))))
		return -ENOMEM;
	cfg->shares = f;
	f[cfg->nr_shares++] = (struct fs_config){ .v = { -1, -1 } };
	return 0;
}

static const struct config_option fs_keys[] = {
	{ "path", 0, set_fs_path },
	{ "tag", 0, set_fs_tag },
	{ "readonly", 0, set_fs_readonly },
	{ "transport", 0, set_fs_transport },
	{ "legacy", 0, set_fs_legacy },
};

/* The device the current [net] section or --net option describes: the last one. */
static struct net_config *cur_net(struct vm_config *cfg)
{
	return &cfg->nets[cfg->nr_nets - 1];
}

static int set_net_tap(struct vm_config *cfg, const struct config_src *src, const char *value)
{
	/* A Linux interface name: 1..15 bytes, no '/', no whitespace, not "." or "..". */
	if (strlen(value) >= CONFIG_IFNAME_MAX || !strcmp(value, ".") || !strcmp(value, ".."))
		return bad_value(src, value, "not an interface name (1 to %d bytes)",
				 CONFIG_IFNAME_MAX - 1);
	for (const char *p = value; *p; p++) {
		if (*p == '/' || *p == ':' || *p <= ' ' || *p == 0x7f)
			return bad_value(src, value, "not an interface name");
	}
	cur_net(cfg)->tap_set = true;
	if (set_origin(&cur_net(cfg)->origin, src, value))
		return -ENOMEM;
	return replace_string(&cur_net(cfg)->tap, strdup(value));
}

static int set_net_mac(struct vm_config *cfg, const struct config_src *src, const char *value)
{
	struct net_config *n = cur_net(cfg);
	unsigned b[6];
	char end;

	if (sscanf(value, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5],
		   &end) != 6 || strlen(value) != 17)
		return bad_value(src, value, "not a MAC address: use six hex bytes, 52:54:00:12:34:56");
	if (b[0] & 1)
		return bad_value(src, value, "a multicast address: the first byte must be even");
	if (!(b[0] | b[1] | b[2] | b[3] | b[4] | b[5]))
		return bad_value(src, value, "the all-zero address");
	for (int i = 0; i < 6; i++)
		n->mac[i] = b[i];
	n->mac_set = true;
	return 0;
}

static int set_net_queues(struct vm_config *cfg, const struct config_src *src, const char *value)
{
	return parse_count(src, value, 1, CONFIG_MAX_NET_QUEUES, &cur_net(cfg)->queues);
}

static int set_net_mtu(struct vm_config *cfg, const struct config_src *src, const char *value)
{
	/* 68: IPv4's minimum; 65535: virtio-net's mtu field. */
	return parse_count(src, value, 68, 65535, &cur_net(cfg)->mtu);
}

static int set_net_transport(struct vm_config *cfg, const struct config_src *src,
			     const char *value)
{
	return parse_transport(src, value, &cur_net(cfg)->v.transport);
}

static int set_net_legacy(struct vm_config *cfg, const struct config_src *src, const char *value)
{
	return parse_bool(src, value, &cur_net(cfg)->v.legacy);
}

static int set_net_vhost(struct vm_config *cfg, const struct config_src *src, const char *value)
{
	return parse_bool(src, value, &cur_net(cfg)->vhost);
}

static int net_begin(struct vm_config *cfg)
{
	struct net_config *n;

	if (cfg->nr_nets == CONFIG_MAX_NETS) {
		log_error("more than %d network devices", CONFIG_MAX_NETS);
		return -EINVAL;
	}
	if (!(n = realloc(cfg->nets, (cfg->nr_nets + 1) * sizeof(*n))))
		return -ENOMEM;
	cfg->nets = n;
	n[cfg->nr_nets++] = (struct net_config){ .v = { -1, -1 } };
	return 0;
}

static const struct config_option net_keys[] = {
	{ "tap", OPT_EMPTY_OK, set_net_tap },
	{ "mac", 0, set_net_mac },
	{ "queues", 0, set_net_queues },
	{ "mtu", 0, set_net_mtu },
	{ "transport", 0, set_net_transport },
	{ "legacy", 0, set_net_legacy },
	{ "vhost", 0, set_net_vhost },
};

/* --rng source=x,legacy=on: each item through the section's key table. A bare word is the value
 * of `bare_key` (--console stdio is mode=stdio), if the device has one. */
static int apply_items(struct vm_config *cfg, const struct config_src *src, const char *value,
		       const struct config_option *keys, unsigned nkeys, const char *bare_key,
		       const char *usage)
{
	struct config_subopt *it;
	int n, ret = 0;

	if (!value)
		return 0;
	n = config_subopts_split(value, &it);
	if (n == -ENOMEM)
		return n;
	if (n < 0)
		return bad_value(src, value, "empty item: use %s", usage);
	for (int i = 0; i < n && !ret; i++) {
		const char *key = it[i].value ? it[i].key : bare_key, *v = it[i].value;
		const struct config_option *opt = key ? find_option(keys, nkeys, key, strlen(key))
						      : NULL;
		char name[64];
		struct config_src item = *src;

		if (!it[i].value)
			v = it[i].key;
		if (!opt) {
			ret = bad_value(src, value, "unknown item '%s': use %s", it[i].key, usage);
			break;
		}
		if (!*v && !(opt->flags & OPT_EMPTY_OK)) {
			ret = bad_value(src, value, "'%s' needs a value", key);
			break;
		}
		snprintf(name, sizeof(name), "%s %s", src->name, key);
		item.name = name;
		ret = opt->set(cfg, &item, v);
	}
	free(it);
	return ret;
}

#define RNG_USAGE     "source=PATH, transport=pci|mmio, legacy=on|off"
#define CONSOLE_USAGE                                                                              \
	"stdio, pty, file=PATH, socket=PATH or none, and name=NAME, transport=pci|mmio, "          \
	"legacy=on|off"

static int set_rng(struct vm_config *cfg, const struct config_src *src, const char *value)
{
	int ret = rng_begin(cfg);

	return ret ? ret : apply_items(cfg, src, value, rng_keys, ARRAY_SIZE(rng_keys), NULL,
				       RNG_USAGE);
}

#define BALLOON_USAGE                                                                              \
	"size=SIZE, deflate_on_oom=on|off, free_page_reporting=on|off, stats_period=SECONDS, "     \
	"transport=pci|mmio, legacy=on|off"

static int set_balloon(struct vm_config *cfg, const struct config_src *src, const char *value)
{
	int ret = balloon_begin(cfg);

	return ret ? ret : apply_items(cfg, src, value, balloon_keys, ARRAY_SIZE(balloon_keys),
				       NULL, BALLOON_USAGE);
}

#define VSOCK_USAGE "cid=N (3 to 4294967294), transport=pci|mmio, legacy=on|off"

static int set_vsock(struct vm_config *cfg, const struct config_src *src, const char *value)
{
	int ret = vsock_begin(cfg);

	return ret ? ret : apply_items(cfg, src, value, vsock_keys, ARRAY_SIZE(vsock_keys), "cid",
				       VSOCK_USAGE);
}

static int set_console(struct vm_config *cfg, const struct config_src *src, const char *value)
{
	int ret = console_begin(cfg);

	return ret ? ret : apply_items(cfg, src, value, console_keys, ARRAY_SIZE(console_keys),
				       "mode", CONSOLE_USAGE);
}

#define DISK_USAGE                                                                                 \
	"path=FILE, readonly=on|off, serial=STR, queues=N, transport=pci|mmio, legacy=on|off"
#define SCSI_USAGE "path=FILE, readonly=on|off, transport=pci|mmio, legacy=on|off"
#define NET_USAGE                                                                                  \
	"tap=NAME, mac=MAC, queues=N, mtu=N, vhost=on|off, transport=pci|mmio, legacy=on|off"

static int set_disk(struct vm_config *cfg, const struct config_src *src, const char *value)
{
	int ret = disk_begin(cfg);

	return ret ? ret : apply_items(cfg, src, value, disk_keys, ARRAY_SIZE(disk_keys), "path",
				       DISK_USAGE);
}

static int set_scsi(struct vm_config *cfg, const struct config_src *src, const char *value)
{
	int ret = scsi_begin(cfg);

	return ret ? ret : apply_items(cfg, src, value, scsi_keys, ARRAY_SIZE(scsi_keys), "path",
				       SCSI_USAGE);
}

#define FS_USAGE "path=DIR, tag=TAG, readonly=on|off, transport=pci|mmio, legacy=on|off"

static int set_fs(struct vm_config *cfg, const struct config_src *src, const char *value)
{
	int ret = fs_begin(cfg);

	return ret ? ret : apply_items(cfg, src, value, fs_keys, ARRAY_SIZE(fs_keys), "path",
				       FS_USAGE);
}

static int set_net(struct vm_config *cfg, const struct config_src *src, const char *value)
{
	int ret = net_begin(cfg);

	return ret ? ret : apply_items(cfg, src, value, net_keys, ARRAY_SIZE(net_keys), "tap",
				       NET_USAGE);
}

static int set_help(struct vm_config *cfg, const struct config_src *src, const char *value)
{
	cfg->help = true;
	return 0;
}

static int set_version(struct vm_config *cfg, const struct config_src *src, const char *value)
{
	cfg->version = true;
	return 0;
}

/* --config is read before every other option, so it has no setter. */
static const struct config_option vm_options[] = {
	{ "config", OPT_ARGV_ONLY, NULL },
	{ "kernel", 0, set_kernel },
	{ "initrd", 0, set_initrd },
	{ "cmdline", OPT_EMPTY_OK, set_cmdline },
	{ "cpus", 0, set_cpus },
	{ "memory", 0, set_memory },
	{ "serial", 0, set_serial },
	{ "transport", 0, set_transport },
	{ "legacy", OPT_FLAG, set_legacy },
	{ "rng", OPT_ARGV_ONLY | OPT_VALUE_OPTIONAL, set_rng },
	{ "console", OPT_ARGV_ONLY, set_console },
	{ "disk", OPT_ARGV_ONLY, set_disk },
	{ "scsi", OPT_ARGV_ONLY, set_scsi },
	{ "net", OPT_ARGV_ONLY, set_net },
	{ "fs", OPT_ARGV_ONLY, set_fs },
	{ "balloon", OPT_ARGV_ONLY | OPT_VALUE_OPTIONAL, set_balloon },
	{ "vsock", OPT_ARGV_ONLY, set_vsock },
	{ "timeout", 0, set_timeout },
	{ "log-level", 0, set_log_level },
	{ "sandbox", 0, set_sandbox },
	{ "on-panic", 0, set_on_panic },
	{ "on-reboot", 0, set_on_reboot },
	{ "api-socket", 0, set_api_socket },
	{ "dump-dtb", 0, set_dump_dtb },
	{ "help", OPT_FLAG | OPT_ARGV_ONLY, set_help },
	{ "version", OPT_FLAG | OPT_ARGV_ONLY, set_version },
};

struct config_section {
	const char *name;
	const struct config_option *keys;
	unsigned nkeys;
	bool repeatable;                         /* each section is one more device */
	int (*begin)(struct vm_config *cfg); /* a new section starts: e.g. append a device */
};

static const struct config_section sections[] = {
	{ "vm", vm_options, ARRAY_SIZE(vm_options), false, NULL },
	{ "rng", rng_keys, ARRAY_SIZE(rng_keys), false, rng_begin },
	{ "console", console_keys, ARRAY_SIZE(console_keys), true, console_begin },
	{ "disk", disk_keys, ARRAY_SIZE(disk_keys), true, disk_begin },
	{ "scsi", scsi_keys, ARRAY_SIZE(scsi_keys), true, scsi_begin },
	{ "net", net_keys, ARRAY_SIZE(net_keys), true, net_begin },
	{ "fs", fs_keys, ARRAY_SIZE(fs_keys), true, fs_begin },
	{ "balloon", balloon_keys, ARRAY_SIZE(balloon_keys), false, balloon_begin },
	{ "vsock", vsock_keys, ARRAY_SIZE(vsock_keys), false, vsock_begin },
};

#define MAX_SECTION_KEYS 32
_Static_assert(ARRAY_SIZE(vm_options) <= MAX_SECTION_KEYS, "raise MAX_SECTION_KEYS");

static const struct config_option *find_option(const struct config_option *opts, unsigned n,
					       const char *name, size_t len)
{
	for (unsigned i = 0; i < n; i++) {
		size_t k = 0;

		if (strlen(opts[i].name) != len)
			continue;
		/* '-' and '_' are the same in names: api-socket, api_socket. */
		while (k < len && (opts[i].name[k] == name[k] ||
				   (strchr("-_", opts[i].name[k]) && name[k] && strchr("-_", name[k]))))
			k++;
		if (k == len)
			return &opts[i];
	}
	return NULL;
}

static int apply_option(struct vm_config *cfg, const struct config_option *opt,
			const struct config_src *src, const char *value)
{
	if (!*value && !(opt->flags & OPT_EMPTY_OK)) {
		if (src->file)
			src_error(src, "key '%s' needs a value", opt->name);
		else
			src_error(src, "option '--%s' needs a value", opt->name);
		return -EINVAL;
	}
	return opt->set(cfg, src, value);
}

/* ---- The config file ---- */

struct file_ctx {
	struct vm_config *cfg;
	FILE *f;
	char *buf; /* getline's */
	size_t cap;
	struct config_src src;
	const struct config_section *section; /* NULL before the first header */
	unsigned section_line[ARRAY_SIZE(sections)];
	unsigned key_line[MAX_SECTION_KEYS]; /* where each key of this section was set */
	bool pending; /* the last line served must produce a handler call */
	int err;      /* the first error, already reported: read no further */
	int read_errno;
};

static int section_begin(struct file_ctx *ctx, const char *name, size_t len)
{
	const struct config_section *s = NULL;
	unsigned i;

	for (i = 0; i < ARRAY_SIZE(sections); i++) {
		if (strlen(sections[i].name) == len && !memcmp(sections[i].name, name, len)) {
			s = &sections[i];
			break;
		}
	}
	if (!s) {
		src_error(&ctx->src,
			  "unknown section [%.*s] (known: [vm], [rng], [console], [disk], [scsi], [net], "
			  "[fs], [balloon], [vsock])",
			  (int)len, name);
		return -EINVAL;
	}
	if (!s->repeatable && ctx->section_line[i]) {
		src_error(&ctx->src, "second [%s] section (the first is on line %u)", s->name,
			  ctx->section_line[i]);
		return -EINVAL;
	}
	ctx->section_line[i] = ctx->src.line;
	ctx->section = s;
	memset(ctx->key_line, 0, sizeof(ctx->key_line));
	return s->begin ? s->begin(ctx->cfg) : 0;
}

/* inih reads through this so that we see every line: it counts lines for messages, reports
 * section starts (inih only calls the handler for keys), catches lines inih would silently cut at
 * its compiled-in 200-byte buffer, and notices lines inih skips as malformed (a key line that
 * produced no handler call), so parsing stops at the first error with the right line. */
static char *file_reader(char *str, int num, void *stream)
{
	struct file_ctx *ctx = stream;
	size_t len;
	ssize_t n;
	char *line;

	if (ctx->pending) {
		ctx->pending = false;
		src_error(&ctx->src, "malformed line: expected 'key = value' or '[section]'");
		ctx->err = -EINVAL;
	}
	if (ctx->err)
		return NULL;
	errno = 0;
	n = getline(&ctx->buf, &ctx->cap, ctx->f);
	if (n < 0) {
		if (ferror(ctx->f)) {
			ctx->read_errno = errno ? errno : EIO;
			ctx->err = -EINVAL;
		}
		return NULL;
	}
	ctx->src.line++;
	line = ctx->buf;
	len = (size_t)n;
	if (ctx->src.line == 1 && len >= 3 && !memcmp(line, "\xef\xbb\xbf", 3)) {
		line += 3;
		len -= 3;
	}
	/* Without its indentation, inih cannot take an indented line for the continuation of the
	 * previous value: indenting keys under a section is just layout. */
	while (len && (*line == ' ' || *line == '\t')) {
		line++;
		len--;
	}
	while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
		len--;
	if (memchr(line, '\0', len)) {
		src_error(&ctx->src, "line contains a NUL byte");
		ctx->err = -EINVAL;
		return NULL;
	}
	/* inih wants room for "\r\n\0" after the text. */
	if (num < 3 || len > (size_t)num - 3) {
		src_error(&ctx->src, "line longer than %d characters", num - 3);
		ctx->err = -EINVAL;
		return NULL;
	}
	memcpy(str, line, len);
	str[len] = '\n';
	str[len + 1] = '\0';

	if (!len || line[0] == ';' || line[0] == '#')
		return str;
	if (line[0] == '[') {
		char *end = memchr(line, ']', len);

		if (!end) {
			ctx->pending = true; /* inih rejects it: reported as malformed */
			return str;
		}
		if ((ctx->err = section_begin(ctx, line + 1, (size_t)(end - line - 1))))
			return NULL;
		return str;
	}
	ctx->pending = true;
	return str;
}

static int file_handler(void *user, const char *section, const char *name, const char *value)
{
	struct file_ctx *ctx = user;
	const struct config_option *opt;
	unsigned i;

	ctx->pending = false;
	if (ctx->err)
		return 0;
	ctx->src.name = name;
	if (!ctx->section) {
		src_error(&ctx->src, "key '%s' is outside any section: put it under [vm]", name);
		goto fail;
	}
	opt = find_option(ctx->section->keys, ctx->section->nkeys, name, strlen(name));
	if (!opt) {
		src_error(&ctx->src, "unknown key '%s' in [%s]", name, ctx->section->name);
		goto fail;
	}
	if (opt->flags & OPT_ARGV_ONLY) {
		src_error(&ctx->src, "'%s' is a command-line option, not a config file key", name);
		goto fail;
	}
	i = (unsigned)(opt - ctx->section->keys);
	if (ctx->key_line[i]) {
		src_error(&ctx->src, "duplicate key '%s' (first set on line %u)", name,
			  ctx->key_line[i]);
		goto fail;
	}
	ctx->key_line[i] = ctx->src.line;
	if ((ctx->err = apply_option(ctx->cfg, opt, &ctx->src, value)))
		return 0;
	return 1;
fail:
	ctx->err = -EINVAL;
	return 0;
}

static int config_load_file(struct vm_config *cfg, const char *path)
{
	struct file_ctx ctx = { .cfg = cfg, .src = { .file = path } };
	const char *slash = strrchr(path, '/');
	char *dir = NULL;
	int ret;

	/* No slash: the file is in the working directory, and so are its relative paths. */
	if (slash && !(dir = strndup(path, slash == path ? 1 : (size_t)(slash - path))))
		return -ENOMEM;
	ctx.src.dir = dir;
	ctx.f = fopen(path, "r");
	if (!ctx.f) {
		log_error("cannot read config file '%s': %s", path, strerror(errno));
		free(dir);
		return -EINVAL;
	}
	ret = ini_parse_stream(file_reader, &ctx, file_handler, &ctx);
	if (ctx.read_errno) {
		log_error("cannot read config file '%s': %s", path, strerror(ctx.read_errno));
		ret = -EINVAL;
	} else if (ctx.err) {
		ret = ctx.err;
	} else if (ret > 0) {
		/* The reader should have caught it first; name the line all the same. */
		log_error("%s:%d: malformed line", path, ret);
		ret = -EINVAL;
	} else if (ret < 0) {
		ret = -ENOMEM;
	}
	fclose(ctx.f);
	free(ctx.buf);
	free(dir);
	return ret;
}

/* ---- The command line ---- */

/* `--name` or `--name=...` naming a known option. */
static const struct config_option *argv_option(const char *arg)
{
	size_t len;

	if (strncmp(arg, "--", 2))
		return NULL;
	arg += 2;
	len = strcspn(arg, "=");
	return find_option(vm_options, ARRAY_SIZE(vm_options), arg, len);
}

/* The option at argv[*i], with its value (NULL for a flag); advances *i past both. */
static int next_option(int argc, char **argv, int *i, const struct config_option **opt,
		       const char **value)
{
	const char *arg = argv[*i], *eq;

	if (arg[0] != '-' || !arg[1]) {
		log_error("unexpected argument '%s': vmm takes only options (see vmm --help)", arg);
		return -EINVAL;
	}
	*opt = argv_option(arg);
	if (!*opt) {
		log_error("unknown option '%.*s' (see vmm --help)", (int)strcspn(arg, "="), arg);
		return -EINVAL;
	}
	(*i)++;
	eq = strchr(arg, '=');
	if ((*opt)->flags & OPT_FLAG) {
		/* A flag that is also a file key (--legacy) may say --legacy=off. */
		if (eq && ((*opt)->flags & OPT_ARGV_ONLY)) {
			log_error("option '--%s' takes no value", (*opt)->name);
			return -EINVAL;
		}
		*value = eq ? eq + 1 : NULL;
		return 0;
	}
	if (eq) {
		*value = eq + 1;
		return 0;
	}
	/* `--rng --console stdio`: the next word is --rng's value only if it is not an option. */
	if (((*opt)->flags & OPT_VALUE_OPTIONAL) && (*i >= argc || argv[*i][0] == '-')) {
		*value = NULL;
		return 0;
	}
	/* `--kernel --cpus 2` is a forgotten value, not a kernel named "--cpus"; a value that
	 * really starts with the name of an option can be written --kernel=--cpus. */
	if (*i >= argc || argv_option(argv[*i])) {
		log_error("option '--%s' needs a value", (*opt)->name);
		return -EINVAL;
	}
	*value = argv[(*i)++];
	return 0;
}

/* The console ports as devices.c wants them: port 0 (the console) first, once, then the named
 * ports in the order given. Several unnamed --console options: the last wins, as for any option.
 * Then the rules that span options: one terminal, and hvc0 as the kernel's console by default
 * when the console has it. */
static int config_finish(struct vm_config *cfg)
{
	struct console_port_config *ports, *last0 = NULL;
	unsigned n = 1;

	/* Check first, then move: on an error config_free still finds every string once. */
	for (unsigned i = 0; i < cfg->nr_ports; i++) {
		struct console_port_config *p = &cfg->ports[i];

		if (!p->name) {
			last0 = p;
			continue;
		}
		if (p->mode != CONS_SOCKET && p->mode != CONS_FILE) {
			log_error("--console name=%s: a named port needs socket=PATH or file=PATH",
				  p->name);
			return -EINVAL;
		}
		for (unsigned j = 0; j < i; j++) {
			if (cfg->ports[j].name && !strcmp(cfg->ports[j].name, p->name)) {
				log_error("--console name=%s: two ports with that name", p->name);
				return -EINVAL;
			}
		}
	}
	if (cfg->nr_ports) {
		if (!(ports = calloc(cfg->nr_ports + 1, sizeof(*ports))))
			return -ENOMEM;
		ports[0] = last0 ? *last0 : (struct console_port_config){ .mode = CONS_NONE };
		for (unsigned i = 0; i < cfg->nr_ports; i++) {
			if (cfg->ports[i].name)
				ports[n++] = cfg->ports[i];
			else if (&cfg->ports[i] != last0) {
				free(cfg->ports[i].path);
				free(cfg->ports[i].origin);
			}
		}
		free(cfg->ports);
		cfg->ports = ports;
		cfg->nr_ports = n;
	}
	for (unsigned i = 0; i < cfg->nr_disks; i++) {
		if (!cfg->disks[i].path) {
			log_error("--disk (or [disk] section) number %u has no path=FILE", i + 1);
			return -EINVAL;
		}
	}
	for (unsigned i = 0; i < cfg->nr_luns; i++) {
		if (!cfg->luns[i].path) {
			log_error("--scsi (or [scsi] section) number %u has no path=FILE", i + 1);
			return -EINVAL;
		}
	}
	for (unsigned i = 0; i < cfg->nr_nets; i++) {
		if (!cfg->nets[i].tap_set) {
			log_error("--net (or [net] section) number %u has no tap=NAME (tap= to create "
				  "one)", i + 1);
			return -EINVAL;
		}
	}
	for (unsigned i = 0; i < cfg->nr_shares; i++) {
		const struct fs_config *f = &cfg->shares[i];

		if (!f->path || !f->tag) {
			log_error("--fs (or [fs] section) number %u has no %s", i + 1,
				  f->path ? "tag=TAG (the name the guest mounts)" : "path=DIR");
			return -EINVAL;
		}
		for (unsigned j = 0; j < i; j++) {
			if (!strcmp(cfg->shares[j].tag, f->tag)) {
				log_error("--fs number %u and %u have the same tag=%s: the guest could "
					  "mount only one of them", j + 1, i + 1, f->tag);
				return -EINVAL;
			}
		}
		if (config_legacy(cfg, &f->v) && config_transport(cfg, &f->v) == TRANSPORT_PCI &&
		    strlen(f->tag) > CONFIG_TAG_MAX_LEGACY_PCI) {
			log_error("--fs number %u: a tag of %zu bytes does not fit the legacy "
				  "interface of virtio-pci (at most %d): a shorter tag, legacy=off "
				  "or transport=mmio",
				  i + 1, strlen(f->tag), CONFIG_TAG_MAX_LEGACY_PCI);
			return -EINVAL;
		}
	}
	if (cfg->vsock.enabled && !cfg->vsock.cid) {
		log_error("--vsock (or [vsock] section) has no cid=N (the guest's address, 3 or more)");
		return -EINVAL;
	}
	/* 4.1.2.1 gives transitional PCI IDs to the older types only: no legacy driver knows a
	 * socket device. virtio-mmio version 1 has no such list. Asked of the device itself, that
	 * is an error; --legacy, for all devices, leaves it modern on virtio-pci (devices.c). */
	if (cfg->vsock.enabled && cfg->vsock.v.legacy == 1 &&
	    config_transport(cfg, &cfg->vsock.v) == TRANSPORT_PCI) {
		log_error("--vsock: virtio-vsock has no transitional virtio-pci device (legacy=on): "
			  "legacy=off, or transport=mmio for virtio-mmio version 1");
		return -EINVAL;
	}
	if (cfg->nr_ports && cfg->ports[0].mode == CONS_STDIO) {
		if (cfg->serial_set && cfg->serial == SERIAL_STDIO) {
			log_error("--console stdio and --serial stdio: only one of them can have the "
				  "terminal");
			return -EINVAL;
		}
		if (!cfg->serial_set)
			cfg->serial = SERIAL_NONE;
	}
	if (!cfg->cmdline)
		return replace_string(&cfg->cmdline,
				      strdup(cfg->nr_ports && cfg->ports[0].mode == CONS_STDIO
						     ? "console=hvc0"
						     : CONFIG_DEFAULT_CMDLINE));
	return 0;
}

enum virtio_transport config_transport(const struct vm_config *cfg, const struct virtio_opts *v)
{
	return v->transport >= 0 ? (enum virtio_transport)v->transport : cfg->transport;
}

bool config_legacy(const struct vm_config *cfg, const struct virtio_opts *v)
{
	return v->legacy >= 0 ? v->legacy : cfg->legacy;
}

int config_parse(struct vm_config *cfg, int argc, char **argv)
{
	const struct config_option *opt;
	const char *config = NULL, *value;
	int i, ret = 0;

	*cfg = (struct vm_config){
		.cpus = 1,
		.memory = CONFIG_DEFAULT_MEMORY,
		.serial = SERIAL_STDIO,
		.log_level = LOG_WARN,
		.sandbox = true,
		.rng.v = { -1, -1 },
		.scsi_v = { -1, -1 },
		.console_v = { -1, -1 },
		.balloon.v = { -1, -1 },
		.vsock.v = { -1, -1 },
	};

	/* Check the whole command line and find --config first: the file is read before the other
	 * options, so that they override it wherever they stand. */
	for (i = 1; i < argc;) {
		if ((ret = next_option(argc, argv, &i, &opt, &value)))
			return ret;
		if (opt == &vm_options[0]) {
			if (config) {
				log_error("option '--config' given twice");
				return -EINVAL;
			}
			if (!*value) {
				log_error("option '--config' needs a value");
				return -EINVAL;
			}
			config = value;
		} else if ((opt->flags & OPT_FLAG) && (opt->flags & OPT_ARGV_ONLY)) {
			opt->set(cfg, NULL, NULL);
		}
	}
	/* main prints the help or version and exits 0: nothing else is read or checked. */
	if (cfg->help || cfg->version)
		return 0;
	if (config && (ret = config_load_file(cfg, config)))
		goto out;
	for (i = 1; i < argc;) {
		struct config_src src = { 0 };

		/* Cannot fail: checked above. */
		if ((ret = next_option(argc, argv, &i, &opt, &value)))
			return ret;
		if (!opt->set || ((opt->flags & OPT_FLAG) && (opt->flags & OPT_ARGV_ONLY)))
			continue;
		src.name = opt->name;
		if (value || (opt->flags & OPT_FLAG)) {
			if (!value)
				ret = opt->set(cfg, &src, NULL);
			else
				ret = apply_option(cfg, opt, &src, value);
		} else {
			ret = opt->set(cfg, &src, NULL); /* --rng without a value */
		}
		if (ret)
			goto out;
	}
	if (!cfg->kernel) {
		log_error("no kernel given: use --kernel FILE or kernel = FILE in [vm]");
		return -EINVAL;
	}
	ret = config_finish(cfg);
out:
	if (ret == -ENOMEM)
		log_error("out of memory");
	return ret;
}

void config_free(struct vm_config *cfg)
{
	free(cfg->kernel);
	free(cfg->initrd);
	free(cfg->kernel_origin);
	free(cfg->initrd_origin);
	free(cfg->cmdline);
	free(cfg->serial_path);
	free(cfg->serial_log);
	free(cfg->serial_origin);
	free(cfg->rng.source);
	free(cfg->rng.origin);
	free(cfg->vsock.origin);
	free(cfg->api_socket);
	free(cfg->dump_dtb);
	for (unsigned i = 0; i < cfg->nr_ports; i++) {
		free(cfg->ports[i].name);
		free(cfg->ports[i].path);
		free(cfg->ports[i].origin);
	}
	free(cfg->ports);
	for (unsigned i = 0; i < cfg->nr_disks; i++) {
		free(cfg->disks[i].path);
		free(cfg->disks[i].origin);
		free(cfg->disks[i].serial);
	}
	free(cfg->disks);
	for (unsigned i = 0; i < cfg->nr_luns; i++) {
		free(cfg->luns[i].path);
		free(cfg->luns[i].origin);
	}
	free(cfg->luns);
	for (unsigned i = 0; i < cfg->nr_nets; i++) {
		free(cfg->nets[i].tap);
		free(cfg->nets[i].origin);
	}
	free(cfg->nets);
	for (unsigned i = 0; i < cfg->nr_shares; i++) {
		free(cfg->shares[i].path);
		free(cfg->shares[i].origin);
		free(cfg->shares[i].tag);
	}
	free(cfg->shares);
	cfg->shares = NULL;
	cfg->nr_shares = 0;
	cfg->nets = NULL;
	cfg->nr_nets = 0;
	cfg->disks = NULL;
	cfg->luns = NULL;
	cfg->nr_disks = cfg->nr_luns = 0;
	cfg->kernel = cfg->initrd = cfg->cmdline = cfg->serial_path = cfg->serial_log = cfg->rng.source = NULL;
	cfg->kernel_origin = cfg->initrd_origin = cfg->serial_origin = cfg->rng.origin = NULL;
	cfg->api_socket = NULL;
	cfg->dump_dtb = NULL;
	cfg->vsock.origin = NULL;
	cfg->ports = NULL;
	cfg->nr_ports = 0;
}

int config_subopts_split(const char *s, struct config_subopt **items)
{
	size_t len = strlen(s), max = 1;
	struct config_subopt *it;
	char *w;
	int n = 0;

	for (const char *p = s; *p; p++)
		max += *p == ',';
	/* One block: the items, then the unescaped text they point into. */
	it = malloc(max * sizeof(*it) + len + 1);
	if (!it)
		return -ENOMEM;
	w = (char *)(it + max);
	for (;;) {
		char *key = w, *eq = NULL;

		while (*s) {
			if (*s == ',') {
				if (s[1] != ',')
					break;
				s++; /* ",," is a literal comma */
			} else if (*s == '=' && !eq) {
				eq = w;
			}
			*w++ = *s++;
		}
		*w++ = '\0';
		if (eq)
			*eq = '\0';
		if (!*key) {
			free(it);
			return -EINVAL;
		}
		it[n++] = (struct config_subopt){ key, eq ? eq + 1 : NULL };
		if (!*s)
			break;
		s++;
	}
	*items = it;
	return n;
}

const char *config_usage(void)
{
	return "Usage: vmm --kernel FILE [OPTION...]\n"
	       "       vmm --config FILE [OPTION...]\n"
	       "Boot a Linux kernel or a freestanding ELF64 program in a KVM virtual machine.\n"
	       "\n"
	       "Options (each is also a key `NAME = VALUE` in [vm] of a config file):\n"
	       "  --config FILE      read options from this INI file; the command line\n"
	       "                     overrides it (command line only)\n"
	       "  --kernel FILE      bzImage or ELF64 image: vmlinux or a freestanding\n"
	       "                     program (required)\n"
	       "  --initrd FILE      initial ramdisk, or none to drop a config file's\n"
	       "                     (default: none)\n"
	       "  --cmdline STR      kernel command line (default: \"" CONFIG_DEFAULT_CMDLINE
	       "\")\n"
	       "  --cpus N           vCPUs, 1.." STR(CONFIG_MAX_CPUS) " (default: 1)\n"
	       "  --memory SIZE      guest RAM, 16M..1T, a multiple of 4K: bytes, or a number\n"
	       "                     with a K, M, G or T suffix (default: 512M)\n"
	       "  --serial MODE      the 8250 UART at 0x3f8 (ttyS0): stdio, pty, file=PATH or\n"
	       "                     none (default: stdio, or none when --console stdio);\n"
	       "                     stdio,log=FILE or pty,log=FILE also copy it to FILE\n"
	       "  --transport T      virtio transport for devices that do not say: pci or\n"
	       "                     mmio (default: pci)\n"
	       "  --legacy           virtio devices also speak the legacy interface:\n"
	       "                     transitional virtio-pci, virtio-mmio version 1\n"
	       "  --timeout SECONDS  stop the guest and exit 124 after SECONDS; 0 means never\n"
	       "                     (default: 0)\n"
	       "  --on-panic ACTION  when the guest panics: exit (status 120), pause (the VM\n"
	       "                     stays, for a look through --api-socket) or restart\n"
	       "                     (default: exit)\n"
	       "  --on-reboot ACTION when the guest reboots: exit (status 0) or restart it in\n"
	       "                     the same vmm (default: exit)\n"
	       "  --log-level LEVEL  host-side diagnostics on stderr: error, warn, info or\n"
	       "                     debug (default: warn)\n"
	       "  --api-socket PATH  serve the control API (HTTP/JSON) on a unix socket at\n"
	       "                     PATH, mode 0600; `vmm ctl PATH COMMAND` is its client\n"
	       "  --dump-dtb FILE    arm64: also write the guest's device tree to FILE\n"
	       "  --sandbox on|off   once set up, run without capabilities, under seccomp\n"
	       "                     and Landlock (default: on; off is for debugging)\n"
	       "  --help             print this help and exit\n"
	       "  --version          print the version and exit\n"
	       "\n"
	       "Devices (each also a config file section, [rng], [console], [disk], [scsi],\n"
	       "[net], [fs], [balloon], [vsock], whose keys are the items; every device takes\n"
	       "transport=pci|mmio and legacy=on|off):\n"
	       "  --rng [source=PATH]\n"
	       "                     virtio entropy device; default source getrandom(2)\n"
	       "  --console MODE[,name=NAME]\n"
	       "                     virtio console: MODE is stdio, pty, file=PATH,\n"
	       "                     socket=PATH or none. Without name= it is the console\n"
	       "                     (hvc0); with name= a port /dev/virtio-ports/NAME\n"
	       "                     (socket= or file=). May be repeated\n"
	       "  --disk path=FILE[,readonly=on][,serial=STR][,queues=N]\n"
	       "                     virtio-blk disk: vda, vdb, ... in the order given;\n"
	       "                     queues defaults to one per vCPU. May be repeated\n"
	       "  --scsi path=FILE[,readonly=on]\n"
	       "                     a disk LUN of one virtio-scsi controller (sda, ...).\n"
	       "                     May be repeated\n"
	       "  --net tap=NAME[,mac=MAC][,queues=N][,mtu=N][,vhost=on]\n"
	       "                     virtio-net on an existing tap device (tap= creates\n"
	       "                     one: needs CAP_NET_ADMIN). queues=N: N queue pairs on\n"
	       "                     a multi_queue tap. vhost=on: the host kernel's\n"
	       "                     vhost-net moves the packets. May be repeated\n"
	       "  --fs path=DIR,tag=TAG[,readonly=on]\n"
	       "                     virtio-9p: DIR shared with the guest, which mounts it\n"
	       "                     with mount -t 9p -o trans=virtio TAG /mnt. May be\n"
	       "                     repeated\n"
	       "  --balloon [size=SIZE][,deflate_on_oom=on][,free_page_reporting=on]\n"
	       "          [,stats_period=SECONDS]\n"
	       "                     virtio memory balloon: the guest gives SIZE back at\n"
	       "                     start (default 0); reported free pages go back too;\n"
	       "                     guest memory statistics every SECONDS\n"
	       "  --vsock cid=N      virtio-vsock on the host kernel's vhost-vsock: AF_VSOCK\n"
	       "                     sockets between the guest, at CID N (3 or more), and\n"
	       "                     the host, at CID 2\n"
	       "\n"
	       "Write --opt VALUE or --opt=VALUE; the last of a repeated option wins.\n"
	       "Relative paths are relative to the working directory on the command line,\n"
	       "and to the config file's directory in a config file.\n"
	       "\n"
	       "Terminal (--serial stdio or --console stdio): Ctrl-A x quits; Ctrl-A Ctrl-A\n"
	       "sends Ctrl-A.\n"
	       "\n"
	       "Exit status:\n"
	       "  0      the guest powered off or rebooted\n"
	       "  1      host-side failure, or a system call the sandbox does not allow\n"
	       "  2      bad options, config file or backend file\n"
	       "  120    the guest panicked (pvpanic, or KVM's crash event)\n"
	       "  121    a vCPU triple-faulted\n"
	       "  122    KVM failed (could not enter the guest, internal error)\n"
	       "  123    Ctrl-A x on the terminal\n"
	       "  124    --timeout expired\n"
	       "  128+S  vmm was stopped by signal S (SIGINT, SIGTERM or SIGHUP)\n"
	       "  143    also: stopped through --api-socket (vm.shutdown), as SIGTERM\n"
	       "  N      the guest wrote byte N to the exit device (port 0xf4, or MMIO\n"
	       "         0xfef00000): its own choice, which may be any of the above\n"
	       "\n"
	       "The config file format and more: docs/usage.md\n";
}
