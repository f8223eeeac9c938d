/* docs/virtio-reference.md's feature-bit tables against what vmm's devices really offer, so the
 * two cannot drift apart. Each device type is built in a few configurations and put behind each
 * transport: modern virtio-pci, transitional virtio-pci, virtio-mmio version 2 and version 1. Its
 * device features are read through the transports' own registers, as a driver reads them, on
 * three interfaces, one column of the page each:
 *   modern      words 0 to 3 of the common configuration (modern and transitional virtio-pci)
 *               and of DeviceFeatures (virtio-mmio version 2), which must all agree;
 *   legacy pci  the 32-bit host features in a transitional device's BAR0;
 *   mmio v1     HostFeatures, words 0 to 3, of virtio-mmio version 1.
 * Then every bit from 0 to 127 of each is held against the page's row for it:
 *   yes   offered in every configuration;
 *   no    offered in none (a bit without a row is `no`);
 *   opt   offered in some configurations and not in others (the why column says which).
 * A device's table gives its own bits; the table of reserved bits holds for every type, unless the
 * device's table has a row for the same bit. Each row's name and number are also looked up in the
 * spec's text (../shared/virtio-spec), where it is present. Run from the top of the tree, as
 * `make check-unit` does. */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "arch.h"
#include "bus/pci.h"
#include "event.h"
#include "memory.h"
#include "virtio/9p.h"
#include "virtio/balloon.h"
#include "virtio/blk.h"
#include "virtio/console.h"
#include "virtio/mmio.h"
#include "virtio/net.h"
#include "virtio/pci.h"
#include "virtio/rng.h"
#include "virtio/scsi.h"
#include "virtio/vsock.h"
#include "vm.h"

/* The socket device's /dev/vhost-vsock is a stand-in answered as Linux's (linked with
 * --wrap=ioctl; every other descriptor's requests go to the kernel). */
#include "fake_vhost.h"

#define DOC      "docs/virtio-reference.md"
#define SPEC_DIR "../shared/virtio-spec"
#define NBITS    128
#define WORDS    (NBITS / 32)
#define MAX_CFG  2

/* The stand-in taps are socket pairs, which have no queues to attach or detach: net_init's calls
 * come here instead (linked with --wrap=tap_enable_queue, see the Makefile), so that a device
 * with several queue pairs can be made without a real multi-queue tap. */
int __wrap_tap_enable_queue(struct tap *t, unsigned q, bool enable);
int __wrap_tap_enable_queue(struct tap *t, unsigned q, bool enable)
{
	return 0;
}

/* ---- the page ---- */

enum word { W_NO, W_YES, W_OPT };
static const char *const word_names[] = { "no", "yes", "opt" };

/* The interfaces a driver may read the features through: the page's columns, in order. */
enum view { V_MODERN, V_LEGACY_PCI, V_MMIO_V1, NVIEWS };
static const char *const view_names[] = { "modern", "legacy pci", "mmio v1" };

struct row {
	bool listed;
	unsigned line;
	char name[64];
	enum word w[NVIEWS];
};

struct table {
	const char *key; /* the first word of the table's heading */
	bool found;
	unsigned line;
	long id; /* the heading's "(ID n)", -1 when it has none */
	struct row rows[NBITS];
};

#define CORE_KEY "Reserved"

/* ---- the device types, each in the configurations that change its offer ---- */

struct inst {
	struct virtio_dev *d;
	union {
		struct net_dev net;
		struct blk_dev blk;
		struct console_dev con;
		struct rng_dev rng;
		struct balloon_dev balloon;
		struct scsi_dev scsi;
		struct v9p_dev v9p;
		struct vsock_dev vsock;
	} u;
	struct tap tap;
	int host_fds[2];
	struct disk disk;
	struct disk *disks[1];
};

struct env {
	struct guest_mem mem;
	struct event_loop loop;
	struct vm vm;
	struct pci_host host;
	char img[32], dir[32];
};

static struct env *env;

struct type {
	const char *key;
	bool modern_only; /* no transitional PCI device (4.1.2.1): its legacy pci column is all no */
	unsigned nr_cfg;
	const char *cfg[MAX_CFG]; /* what each configuration is, for messages */
	void (*make)(struct inst *x, unsigned cfg);
	void (*destroy)(struct inst *x);
};

static void net_make(struct inst *x, unsigned cfg)
{
	static const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
	unsigned pairs = cfg ? 2 : 1;
	int sv[2];

	strcpy(x->tap.name, "test0");
	x->tap.nr_queues = pairs;
	x->tap.offloads = cfg ? TAP_OFFLOAD_CSUM | TAP_OFFLOAD_UFO : 0;
	for (unsigned i = 0; i < TAP_MAX_QUEUES; i++)
		x->tap.fds[i] = -1;
	for (unsigned i = 0; i < pairs; i++) {
		assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
					    sv),
				 0);
		x->tap.fds[i] = sv[0];
		x->host_fds[i] = sv[1];
	}
	assert_int_equal(net_init(&x->u.net, "net0", &x->tap, mac, 0, &env->mem, &env->loop), 0);
	x->d = &x->u.net.vdev;
}

static void net_destroy_inst(struct inst *x)
{
	net_destroy(&x->u.net);
	for (unsigned i = 0; i < x->tap.nr_queues; i++) {
		close(x->tap.fds[i]);
		close(x->host_fds[i]);
	}
}

static void blk_make(struct inst *x, unsigned cfg)
{
	assert_int_equal(disk_open(&x->disk, env->img, cfg == 1, "test"), 0);
	assert_int_equal(blk_init(&x->u.blk, "blk0", &x->disk, NULL, 1, &env->mem, &env->loop), 0);
	x->d = &x->u.blk.vdev;
}

static void blk_destroy_inst(struct inst *x)
{
	blk_destroy(&x->u.blk);
	disk_close(&x->disk);
}

static void console_make(struct inst *x, unsigned cfg)
{
	/* Port 0 on nothing; or on a pty (a terminal: SIZE) with a named port (MULTIPORT). */
	const struct console_port_cfg one = { NULL, CONSOLE_NONE, NULL, NULL };
	const struct console_port_cfg two[2] = { { NULL, CONSOLE_PTY, NULL, NULL },
						 { "p1", CONSOLE_NONE, NULL, NULL } };

	assert_int_equal(console_init(&x->u.con, "console0", cfg ? two : &one, cfg ? 2 : 1,
				      &env->mem, &env->loop, NULL, NULL),
			 0);
	x->d = &x->u.con.vdev;
}

static void console_destroy_inst(struct inst *x)
{
	console_destroy(&x->u.con);
}

static void rng_make(struct inst *x, unsigned cfg)
{
	assert_int_equal(rng_init(&x->u.rng, "rng0", NULL, "test", &env->mem, &env->loop), 0);
	x->d = &x->u.rng.vdev;
}

static void rng_destroy_inst(struct inst *x)
{
	rng_destroy(&x->u.rng);
}

static void balloon_make(struct inst *x, unsigned cfg)
{
	struct balloon_config c = { 0 };

	if (cfg) {
		c.stats_period = 60;
		c.deflate_on_oom = true;
		c.free_page_reporting = true;
	}
	assert_int_equal(balloon_init(&x->u.balloon, "balloon0", &c, &env->mem, &env->loop), 0);
	x->d = &x->u.balloon.vdev;
}

static void balloon_destroy_inst(struct inst *x)
{
	balloon_destroy(&x->u.balloon);
}

static void scsi_make(struct inst *x, unsigned cfg)
{
	assert_int_equal(disk_open(&x->disk, env->img, cfg == 1, "test"), 0);
	x->disks[0] = &x->disk;
	assert_int_equal(scsi_init(&x->u.scsi, "scsi0", x->disks, 1, 1, &env->mem, &env->loop), 0);
	x->d = &x->u.scsi.vdev;
}

static void scsi_destroy_inst(struct inst *x)
{
	scsi_destroy(&x->u.scsi);
	disk_close(&x->disk);
}

static void v9p_make(struct inst *x, unsigned cfg)
{
	assert_int_equal(v9p_init(&x->u.v9p, "fs0", env->dir, "share", cfg == 1, "test", &env->mem,
				  &env->loop),
			 0);
	x->d = &x->u.v9p.vdev;
}

static void v9p_destroy_inst(struct inst *x)
{
	v9p_destroy(&x->u.v9p);
}

/* Configuration 0: the kernel's vhost-vsock has SEQPACKET (Linux 5.14 on); 1: it has not. */
static void vsock_make(struct inst *x, unsigned cfg)
{
	memset(&vk, 0, sizeof(vk));
	vk.kernel_features = KERNEL_61_RINGS | (cfg ? 0 : 1ULL << VIRTIO_VSOCK_F_SEQPACKET);
	assert_int_equal(vsock_init(&x->u.vsock, "vsock0", 3, fake_vhost_new(), &env->mem,
				    &env->loop),
			 0);
	x->d = &x->u.vsock.vdev;
}

static void vsock_destroy_inst(struct inst *x)
{
	vsock_destroy(&x->u.vsock);
}

static const struct type types[] = {
	{ "net", false, 2, { "one queue pair, a tap without UFO", "two queue pairs, a tap with UFO" },
	  net_make, net_destroy_inst },
	{ "blk", false, 2, { "a writable image", "readonly=on" }, blk_make, blk_destroy_inst },
	{ "console", false, 2, { "port 0 on none, no named port", "port 0 on a pty, one named port" },
	  console_make, console_destroy_inst },
	{ "rng", false, 1, { "getrandom" }, rng_make, rng_destroy_inst },
	{ "balloon", false, 2,
	  { "no options", "stats_period=60,deflate_on_oom=on,free_page_reporting=on" },
	  balloon_make, balloon_destroy_inst },
	{ "scsi", false, 2, { "a writable LUN", "a read-only LUN" }, scsi_make, scsi_destroy_inst },
	{ "9p", false, 2, { "a writable share", "readonly=on" }, v9p_make, v9p_destroy_inst },
	{ "vsock", true, 2,
	  { "a kernel with SEQPACKET", "a kernel without SEQPACKET" },
	  vsock_make, vsock_destroy_inst },
};
#define NTYPES (sizeof(types) / sizeof(types[0]))

static struct table tables[NTYPES + 1]; /* the types', then the reserved bits' */
static struct table *const core = &tables[NTYPES];
static char parse_errors[4096];

/* ---- reading the page ---- */

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
		*--e = 0;
	/* `NAME` and NAME are the same name. */
	if (*s == '`' && e - s >= 2 && e[-1] == '`') {
		e[-1] = 0;
		s++;
	}
	return s;
}

static void parse_error(unsigned line, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void parse_error(unsigned line, const char *fmt, ...)
{
	size_t n = strlen(parse_errors);
	va_list ap;

	if (n + 1 >= sizeof(parse_errors))
		return;
	n += (size_t)snprintf(parse_errors + n, sizeof(parse_errors) - n, "%s:%u: ", DOC, line);
	va_start(ap, fmt);
	if (n < sizeof(parse_errors))
		n += (size_t)vsnprintf(parse_errors + n, sizeof(parse_errors) - n, fmt, ap);
	va_end(ap);
	if (n + 1 < sizeof(parse_errors))
		strcat(parse_errors, "\n");
}

static bool parse_word(const char *s, enum word *w)
{
	for (unsigned i = 0; i < sizeof(word_names) / sizeof(word_names[0]); i++) {
		if (!strcmp(s, word_names[i])) {
			*w = (enum word)i;
			return true;
		}
	}
	return false;
}

/* "### KEY ...": the table that KEY names, or NULL for a heading that names none. */
static struct table *heading_table(char *h, unsigned line)
{
	char key[32];
	const char *id;
	size_t n = strcspn(h, " :");

	if (n >= sizeof(key))
		return NULL;
	memcpy(key, h, n);
	key[n] = 0;
	for (unsigned i = 0; i < NTYPES + 1; i++) {
		struct table *t = &tables[i];

		if (strcmp(t->key, key))
			continue;
		if (t->found)
			parse_error(line, "a second table for %s", key);
		t->found = true;
		t->line = line;
		id = strstr(h, "(ID ");
		t->id = id ? strtol(id + 4, NULL, 10) : -1;
		return t;
	}
	return NULL;
}

/* "| bit | NAME | modern | legacy pci | mmio v1 | why |" */
static void parse_row(struct table *t, char *s, unsigned line)
{
	char *cell[7], *end;
	unsigned n = 0;
	bool all_yes = true;
	long bit;
	struct row *r;

	s = strchr(s, '|') + 1;
	while (n < 7 && (end = strchr(s, '|'))) {
		*end = 0;
		cell[n++] = trim(s);
		s = end + 1;
	}
	if (n >= 1 && (!strcmp(cell[0], "bit") || cell[0][0] == '-'))
		return; /* the header, the separator */
	if (n != 3 + NVIEWS) {
		parse_error(line, "a feature row has 6 cells: bit, name, modern, legacy pci, mmio v1, "
				  "why");
		return;
	}
	bit = strtol(cell[0], &end, 10);
	if (end == cell[0] || *end || bit < 0 || bit >= NBITS) {
		parse_error(line, "'%s' is not one bit number from 0 to %d", cell[0], NBITS - 1);
		return;
	}
	r = &t->rows[bit];
	if (r->listed)
		parse_error(line, "bit %ld is already on line %u", bit, r->line);
	r->listed = true;
	r->line = line;
	snprintf(r->name, sizeof(r->name), "%s", cell[1]);
	if (!cell[1][0])
		parse_error(line, "bit %ld has no name", bit);
	for (unsigned i = 0; i < NVIEWS; i++) {
		if (!parse_word(cell[2 + i], &r->w[i]))
			parse_error(line, "bit %ld, %s: '%s' is not yes, no or opt", bit,
				    view_names[i], cell[2 + i]);
		all_yes &= r->w[i] == W_YES;
	}
	if (!all_yes && !cell[2 + NVIEWS][0])
		parse_error(line, "bit %ld is not offered everywhere: say why", bit);
}

static int read_doc(void **state)
{
	FILE *f = fopen(DOC, "r");
	char line[2048];
	struct table *t = NULL;
	unsigned n = 0;

	if (!f) {
		fprintf(stderr, "%s: %s (run from the top of the tree)\n", DOC, strerror(errno));
		return -1;
	}
	for (unsigned i = 0; i < NTYPES; i++)
		tables[i].key = types[i].key;
	core->key = CORE_KEY;
	while (fgets(line, sizeof(line), f)) {
		n++;
		if (!strncmp(line, "#", 1))
			t = !strncmp(line, "### ", 4) ? heading_table(line + 4, n) : NULL;
		else if (t && line[0] == '|')
			parse_row(t, line, n);
	}
	fclose(f);
	for (unsigned i = 0; i < NTYPES + 1; i++)
		if (!tables[i].found)
			parse_error(n, "no '### %s' table", tables[i].key);
	return 0;
}

static void doc_is_well_formed(void **state)
{
	if (parse_errors[0])
		fail_msg("\n%s", parse_errors);
}

/* The row that holds for a type's bit: its own table's, else the reserved bits'. */
static const struct row *row_for(const struct table *t, unsigned bit)
{
	static const struct row none = { .w = { W_NO, W_NO, W_NO } };

	if (t->rows[bit].listed)
		return &t->rows[bit];
	if (core->rows[bit].listed)
		return &core->rows[bit];
	return &none;
}

/* ---- reading the offer through the transports ---- */

struct offer {
	uint32_t w[NVIEWS][WORDS];
};

static uint32_t pci_modern_word(struct virtio_pci *vp, uint32_t sel)
{
	uint8_t b[4];

	memcpy(b, &sel, 4);
	virtio_pci_modern_io(vp, VIRTIO_PCI_COMMON_DFSELECT, b, 4, true);
	virtio_pci_modern_io(vp, VIRTIO_PCI_COMMON_DF, b, 4, false);
	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static uint32_t pci_legacy_word(struct virtio_pci *vp)
{
	uint8_t b[4];

	virtio_pci_legacy_io(vp, VIRTIO_PCI_LEGACY_HOST_FEATURES, b, 4, false);
	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static uint32_t mmio_reg(uint64_t off, uint32_t v, bool write)
{
	uint8_t b[4];

	memcpy(b, &v, 4);
	assert_true(bus_access(&env->vm.mmio, VIRTIO_MMIO_BASE + off, b, 4, write));
	memcpy(&v, b, 4);
	return v;
}

enum transport { PCI_MODERN, PCI_TRANSITIONAL, MMIO_V2, MMIO_V1, NTRANSPORTS };
static const char *const transport_names[] = { "modern virtio-pci", "transitional virtio-pci",
					       "virtio-mmio version 2", "virtio-mmio version 1" };

/* A fresh device of type t in configuration cfg behind transport tr: what a driver reads. */
static void read_offer(const struct type *t, const struct table *tab, unsigned cfg,
		       enum transport tr, struct offer *o)
{
	struct inst *x = calloc(1, sizeof(*x));
	struct virtio_pci *vp;
	struct virtio_mmio mt;
	unsigned id;

	assert_non_null(x);
	memset(o, 0, sizeof(*o));
	t->make(x, cfg);
	id = x->d->ops->device_id;
	if (tr == PCI_MODERN || tr == PCI_TRANSITIONAL) {
		assert_int_equal(virtio_pci_create(&env->host, x->d, tr == PCI_TRANSITIONAL, &vp), 0);
		for (uint32_t w = 0; w < WORDS; w++)
			o->w[V_MODERN][w] = pci_modern_word(vp, w);
		if (tr == PCI_TRANSITIONAL)
			o->w[V_LEGACY_PCI][0] = pci_legacy_word(vp); /* all the register holds */
		virtio_pci_destroy(vp);
	} else {
		bool v1 = tr == MMIO_V1;

		assert_int_equal(virtio_mmio_create(&mt, &env->vm, x->d, VIRTIO_MMIO_BASE, 5, v1), 0);
		assert_int_equal(mmio_reg(VIRTIO_MMIO_DEVICE_ID, 0, false), x->d->ops->device_id);
		for (uint32_t w = 0; w < WORDS; w++) {
			mmio_reg(VIRTIO_MMIO_DEVICE_FEATURES_SEL, w, true);
			o->w[v1 ? V_MMIO_V1 : V_MODERN][w] =
				mmio_reg(VIRTIO_MMIO_DEVICE_FEATURES, 0, false);
		}
		virtio_mmio_destroy(&mt);
	}
	t->destroy(x);
	free(x);
	if (tab->id >= 0 && id != tab->id)
		fail_msg("%s:%u: %s is device ID %u, not %ld", DOC, tab->line, t->key, id, tab->id);
}

static bool has(const uint32_t *w, unsigned bit)
{
	return w[bit / 32] >> (bit % 32) & 1;
}

/* The modern interface is one column: every transport must show it the same. */
static void same_modern(const struct type *t, unsigned cfg, const struct offer *by,
			enum transport tb)
{
	const uint32_t *a = by[PCI_MODERN].w[V_MODERN], *b = by[tb].w[V_MODERN];

	for (unsigned bit = 0; bit < NBITS; bit++)
		if (has(a, bit) != has(b, bit))
			fail_msg("%s (%s): bit %u is %soffered on %s's modern interface but %soffered "
				 "on %s's",
				 t->key, t->cfg[cfg], bit, has(a, bit) ? "" : "not ",
				 transport_names[PCI_MODERN], has(b, bit) ? "" : "not ",
				 transport_names[tb]);
}

/* ---- the comparison ---- */

/* One interface's bit against the page's word for it: 0, or 1 with a message printed. */
static int check_bit(const struct type *t, const struct table *tab, unsigned bit, enum view i,
		     const struct offer *o)
{
	const struct row *r = row_for(tab, bit);
	enum word want = r->w[i];
	unsigned in = 0;
	char where[256] = "";

	for (unsigned c = 0; c < t->nr_cfg; c++) {
		if (!has(o[c].w[i], bit))
			continue;
		in++;
		snprintf(where + strlen(where), sizeof(where) - strlen(where), "%s'%s'",
			 where[0] ? ", " : "", t->cfg[c]);
	}
	if ((want == W_YES && in == t->nr_cfg) || (want == W_NO && in == 0) ||
	    (want == W_OPT && in > 0 && in < t->nr_cfg))
		return 0;
	if (r->listed)
		print_error("%s:%u: %s bit %u %s, %s: the page says '%s'; vmm offers it in %s%s\n",
			    DOC, r->line, t->key, bit, r->name, view_names[i], word_names[want],
			    in ? (in == t->nr_cfg ? "every configuration: " : "")
			       : "no configuration",
			    where);
	else
		print_error("%s: %s bit %u, %s: vmm offers it (%s) but the page has no row for it\n",
			    DOC, t->key, bit, view_names[i], where);
	return 1;
}

static void offer_matches_the_page(void **state)
{
	const struct type *t = *state;
	const struct table *tab = &tables[t - types];
	struct offer o[MAX_CFG], by[NTRANSPORTS];
	int bad = 0;

	if (!tab->found)
		fail_msg("%s: no '### %s' table", DOC, t->key);
	for (unsigned c = 0; c < t->nr_cfg; c++) {
		for (unsigned tr = 0; tr < NTRANSPORTS; tr++) {
			if (tr == PCI_TRANSITIONAL && t->modern_only)
				memset(&by[tr], 0, sizeof(by[tr]));
			else
				read_offer(t, tab, c, tr, &by[tr]);
		}
		if (!t->modern_only)
			same_modern(t, c, by, PCI_TRANSITIONAL);
		same_modern(t, c, by, MMIO_V2);
		memcpy(o[c].w[V_MODERN], by[PCI_MODERN].w[V_MODERN], sizeof(o[c].w[0]));
		memcpy(o[c].w[V_LEGACY_PCI], by[PCI_TRANSITIONAL].w[V_LEGACY_PCI],
		       sizeof(o[c].w[0]));
		memcpy(o[c].w[V_MMIO_V1], by[MMIO_V1].w[V_MMIO_V1], sizeof(o[c].w[0]));
	}
	for (unsigned bit = 0; bit < NBITS; bit++)
		for (unsigned i = 0; i < NVIEWS; i++)
			bad += check_bit(t, tab, bit, (enum view)i, o);
	if (bad)
		fail_msg("%d bit(s) of %s differ from %s (one row per bit: fix the row or the code)",
			 bad, t->key, DOC);
}

/* ---- the names are the spec's ---- */

static char *spec;
static size_t spec_len;

static void spec_add(const char *path)
{
	FILE *f = fopen(path, "r");
	char buf[8192];
	size_t n;

	if (!f)
		return;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
		spec = realloc(spec, spec_len + n + 1);
		assert_non_null(spec);
		memcpy(spec + spec_len, buf, n);
		spec_len += n;
		spec[spec_len] = 0;
	}
	fclose(f);
}

/* Every .tex file under dir, subdirectories included. */
static void spec_read(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[512];
	struct stat st;

	if (!d)
		return;
	while ((e = readdir(d))) {
		size_t n = strlen(e->d_name);

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (stat(path, &st))
			continue;
		if (S_ISDIR(st.st_mode))
			spec_read(path);
		else if (n > 4 && !strcmp(e->d_name + n - 4, ".tex"))
			spec_add(path);
	}
	closedir(d);
}

/* Whether the spec says "NAME (bit)" or "NAME(bit)" anywhere, as its feature lists do. */
static bool spec_names(const char *name, unsigned bit)
{
	size_t len = strlen(name);

	for (const char *p = spec; (p = strstr(p, name)); p += len) {
		const char *q = p + len;
		char *end;

		if (p > spec && (p[-1] == '_' || (p[-1] >= 'A' && p[-1] <= 'Z')))
			continue; /* the tail of a longer name */
		while (*q == ' ' || *q == '\t')
			q++;
		if (*q++ != '(')
			continue;
		while (*q == ' ')
			q++;
		if (strtoul(q, &end, 10) == bit && end != q) {
			while (*end == ' ')
				end++;
			if (*end == ')')
				return true;
		}
	}
	return false;
}

static void names_are_the_specs(void **state)
{
	const char *dir = getenv("VIRTIO_SPEC_DIR") ? getenv("VIRTIO_SPEC_DIR") : SPEC_DIR;
	int bad = 0;

	spec_read(dir);
	if (!spec) {
		print_message("%s: no spec text; names not checked\n", dir);
		skip();
	}
	for (unsigned i = 0; i < NTYPES + 1; i++) {
		/* The standard names the 9P transport (ID 9) but does not define it. */
		if (!strcmp(tables[i].key, "9p"))
			continue;
		for (unsigned bit = 0; bit < NBITS; bit++) {
			const struct row *r = &tables[i].rows[bit];

			if (r->listed && !spec_names(r->name, bit)) {
				print_error("%s:%u: the spec has no '%s (%u)'\n", DOC, r->line, r->name,
					    bit);
				bad++;
			}
		}
	}
	free(spec);
	spec = NULL;
	spec_len = 0;
	if (bad)
		fail_msg("%d feature name(s) are not the spec's", bad);
}

/* ---- fixture ---- */

static int setup(void **state)
{
	int fd;

	if (read_doc(state))
		return -1;
	env = calloc(1, sizeof(*env));
	assert_non_null(env);
	log_set_level(LOG_ERROR);
	assert_int_equal(gmem_init(&env->mem, 16 << 20), 0);
	assert_int_equal(event_loop_init(&env->loop, "test"), 0);
	env->vm.kvm_fd = env->vm.vm_fd = -1;
	pthread_mutex_init(&env->vm.gsi_lock, NULL);
	bus_init(&env->vm.pio, "pio");
	bus_init(&env->vm.mmio, "mmio");
	assert_int_equal(pci_host_init(&env->host, &env->vm), 0);
	strcpy(env->img, "/var/tmp/vmm-fdoc-XXXXXX");
	fd = mkstemp(env->img);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 1 << 20), 0);
	close(fd);
	strcpy(env->dir, "/var/tmp/vmm-fdoc-XXXXXX");
	assert_non_null(mkdtemp(env->dir));
	return 0;
}

static int teardown(void **state)
{
	if (!env)
		return 0;
	unlink(env->img);
	rmdir(env->dir);
	pci_host_destroy(&env->host);
	bus_destroy(&env->vm.pio);
	bus_destroy(&env->vm.mmio);
	free(env->vm.routes);
	pthread_mutex_destroy(&env->vm.gsi_lock);
	event_loop_destroy(&env->loop);
	gmem_free(&env->mem);
	free(env);
	env = NULL;
	return 0;
}

/* One offer test per device type, named after it. */
#define OFFER_TEST(i) { types[i].key, offer_matches_the_page, NULL, NULL, (void *)&types[i] }

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(doc_is_well_formed),
		OFFER_TEST(0), OFFER_TEST(1), OFFER_TEST(2), OFFER_TEST(3), OFFER_TEST(4),
		OFFER_TEST(5), OFFER_TEST(6), OFFER_TEST(7),
		cmocka_unit_test(names_are_the_specs),
	};

	_Static_assert(NTYPES == 8, "an OFFER_TEST for every device type");
	return cmocka_run_group_tests(tests, setup, teardown);
}
