/* Command line and config file: sizes, every option in both spellings, defaults, the file and its
 * path rules, overrides, and one message (with FILE:LINE: where there is a file) for each error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* ---- helpers ---- */

struct fixture {
	char dir[64];   /* a fresh mkdtemp directory per test */
	char conf[128]; /* dir/vm.conf */
	char err[8192]; /* what config_parse wrote to stderr */
	struct vm_config cfg;
};

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));

	if (!fx)
		return -1;
	strcpy(fx->dir, "/tmp/test_config.XXXXXX");
	if (!mkdtemp(fx->dir))
		return -1;
	snprintf(fx->conf, sizeof(fx->conf), "%s/vm.conf", fx->dir);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	char cmd[128];

	config_free(&fx->cfg);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->dir);
	if (system(cmd))
		return -1;
	free(fx);
	return 0;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

/* Runs config_parse on a NULL-terminated argument list (argv[0] is added), capturing stderr in
 * fx->err. The previous result is freed first, so a test may call it repeatedly. */
static int parse_argv(struct fixture *fx, const char **args)
{
	char *argv[64] = { "vmm" };
	char path[160];
	int argc = 1, fd, saved, ret;
	ssize_t n;

	while (*args)
		argv[argc++] = (char *)*args++;
	argv[argc] = NULL;
	config_free(&fx->cfg);

	snprintf(path, sizeof(path), "%s/stderr", fx->dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	fflush(stderr);
	saved = dup(2);
	assert_true(saved >= 0);
	assert_int_equal(dup2(fd, 2), 2);
	ret = config_parse(&fx->cfg, argc, argv);
	fflush(stderr);
	assert_int_equal(dup2(saved, 2), 2);
	close(saved);
	n = pread(fd, fx->err, sizeof(fx->err) - 1, 0);
	assert_true(n >= 0);
	fx->err[n] = '\0';
	close(fd);
	return ret;
}

#define PARSE(fx, ...) parse_argv(fx, (const char *[]){ __VA_ARGS__ __VA_OPT__(, ) NULL })

/* Writes text to fx->conf and parses `--config fx->conf` plus the given arguments. */
#define PARSE_CONF(fx, text, ...)                                                                  \
	(write_file((fx)->conf, text), PARSE(fx, "--config", (fx)->conf, ##__VA_ARGS__))

/* config_parse failed with -EINVAL and printed exactly one line containing want. */
static void assert_error(struct fixture *fx, int ret, const char *want)
{
	char *nl;

	assert_int_equal(ret, -EINVAL);
	if (!strstr(fx->err, want))
		fail_msg("stderr '%s' does not contain '%s'", fx->err, want);
	assert_true(!strncmp(fx->err, "vmm: ", 5));
	nl = strchr(fx->err, '\n');
	assert_non_null(nl);
	assert_string_equal(nl + 1, ""); /* one message */
}

/* Like assert_error, for a message that must start with "vmm: FILE:LINE: ". */
static void assert_file_error(struct fixture *fx, int ret, unsigned line, const char *want)
{
	char prefix[200];

	assert_error(fx, ret, want);
	snprintf(prefix, sizeof(prefix), "vmm: %s:%u: ", fx->conf, line);
	if (strncmp(fx->err, prefix, strlen(prefix)))
		fail_msg("stderr '%s' does not start with '%s'", fx->err, prefix);
}

static void assert_ok(struct fixture *fx, int ret)
{
	if (ret)
		fail_msg("config_parse returned %d: %s", ret, fx->err);
	assert_string_equal(fx->err, "");
}

/* ---- sizes ---- */

static void sizes_parse(void **state)
{
	static const struct {
		const char *s;
		uint64_t v;
	} good[] = {
		{ "0", 0 },
		{ "4096", 4096 },
		{ "007", 7 },
		{ "64K", 64 << 10 },
		{ "64k", 64 << 10 },
		{ "512M", 512ULL << 20 },
		{ "512m", 512ULL << 20 },
		{ "2G", 2ULL << 30 },
		{ "1T", 1ULL << 40 },
		{ "1t", 1ULL << 40 },
		{ "2GiB", 2ULL << 30 },
		{ "4KiB", 4096 },
		{ "18446744073709551615", UINT64_MAX },
		{ "16777215T", 16777215ULL << 40 },
	};
	static const char *const bad[] = {
		"",   "-1",	"+1", " 1",   "1 ",   "1.5G", "M",    "1X",  "1KB", "1Gi", "1iB",
		"0x10", "1GG", "1G ", "G1", "18446744073709551616", "16777216T",
		"99999999999999999999K",
	};
	uint64_t v;

	for (unsigned i = 0; i < ARRAY_SIZE(good); i++) {
		v = 12345;
		if (config_parse_size(good[i].s, &v))
			fail_msg("'%s' rejected", good[i].s);
		assert_int_equal(v, good[i].v);
	}
	for (unsigned i = 0; i < ARRAY_SIZE(bad); i++) {
		v = 12345;
		if (config_parse_size(bad[i], &v) != -EINVAL)
			fail_msg("'%s' accepted", bad[i]);
		assert_int_equal(v, 12345); /* untouched on error */
	}
}

/* ---- the command line ---- */

static void defaults(void **state)
{
	struct fixture *fx = *state;

	assert_ok(fx, PARSE(fx, "--kernel", "bzImage"));
	assert_string_equal(fx->cfg.kernel, "bzImage");
	assert_null(fx->cfg.initrd);
	assert_string_equal(fx->cfg.cmdline, CONFIG_DEFAULT_CMDLINE);
	assert_string_equal(fx->cfg.cmdline, "console=ttyS0");
	assert_int_equal(fx->cfg.cpus, 1);
	assert_int_equal(fx->cfg.memory, 512ULL << 20);
	assert_int_equal(fx->cfg.serial, SERIAL_STDIO);
	assert_null(fx->cfg.serial_path);
	assert_int_equal(fx->cfg.timeout, 0);
	assert_int_equal(fx->cfg.log_level, LOG_WARN);
	assert_true(fx->cfg.sandbox);
	assert_int_equal(fx->cfg.on_panic, PANIC_EXIT);
	assert_int_equal(fx->cfg.on_reboot, REBOOT_EXIT);
	assert_false(config_restarts(&fx->cfg));
	assert_false(fx->cfg.help);
	assert_false(fx->cfg.version);
}

/* Every value option, as `--opt VALUE` and as `--opt=VALUE`. */
static void every_option_both_forms(void **state)
{
	struct fixture *fx = *state;

	for (int eq = 0; eq < 2; eq++) {
		const char *opts[][2] = {
			{ "--kernel", "k/vmlinux" },   { "--initrd", "i.img" },
			{ "--cmdline", "console=ttyS0 quiet" }, { "--cpus", "4" },
			{ "--memory", "2G" },	       { "--serial", "file=out/con.log" },
			{ "--timeout", "30" },	       { "--log-level", "debug" },
			{ "--sandbox", "off" },	       { "--on-panic", "pause" },
			{ "--on-reboot", "restart" },
		};
		const char *args[2 * ARRAY_SIZE(opts) + 1];
		char joined[ARRAY_SIZE(opts)][128];
		unsigned n = 0;

		for (unsigned i = 0; i < ARRAY_SIZE(opts); i++) {
			if (eq) {
				snprintf(joined[i], sizeof(joined[i]), "%s=%s", opts[i][0],
					 opts[i][1]);
				args[n++] = joined[i];
			} else {
				args[n++] = opts[i][0];
				args[n++] = opts[i][1];
			}
		}
		args[n] = NULL;
		assert_ok(fx, parse_argv(fx, args));
		assert_string_equal(fx->cfg.kernel, "k/vmlinux"); /* cwd-relative: kept as given */
		assert_string_equal(fx->cfg.initrd, "i.img");
		assert_string_equal(fx->cfg.cmdline, "console=ttyS0 quiet");
		assert_int_equal(fx->cfg.cpus, 4);
		assert_int_equal(fx->cfg.memory, 2ULL << 30);
		assert_int_equal(fx->cfg.serial, SERIAL_FILE);
		assert_string_equal(fx->cfg.serial_path, "out/con.log");
		assert_int_equal(fx->cfg.timeout, 30);
		assert_int_equal(fx->cfg.log_level, LOG_DEBUG);
		assert_false(fx->cfg.sandbox);
		assert_int_equal(fx->cfg.on_panic, PANIC_PAUSE);
		assert_int_equal(fx->cfg.on_reboot, REBOOT_RESTART);
		assert_true(config_restarts(&fx->cfg));
	}
}

static void values_and_ranges(void **state)
{
	struct fixture *fx = *state;
	static const struct {
		const char *name;
		enum log_level level;
	} levels[] = { { "error", LOG_ERROR }, { "warn", LOG_WARN }, { "info", LOG_INFO },
		       { "debug", LOG_DEBUG } };

	assert_ok(fx, PARSE(fx, "--kernel", "k", "--cpus", "254", "--memory", "16M"));
	assert_int_equal(fx->cfg.cpus, CONFIG_MAX_CPUS);
	assert_int_equal(fx->cfg.memory, CONFIG_MIN_MEMORY);
	assert_ok(fx, PARSE(fx, "--kernel", "k", "--memory", "1T", "--memory=1099511627776"));
	assert_int_equal(fx->cfg.memory, CONFIG_MAX_MEMORY);
	assert_ok(fx, PARSE(fx, "--kernel", "k", "--memory", "1048576k", "--timeout", "0"));
	assert_int_equal(fx->cfg.memory, 1ULL << 30);
	assert_int_equal(fx->cfg.timeout, 0);
	assert_ok(fx, PARSE(fx, "--kernel", "k", "--timeout", "4294967295"));
	assert_int_equal(fx->cfg.timeout, UINT_MAX);

	/* An empty kernel command line is allowed; the last of a repeated option wins. */
	assert_ok(fx, PARSE(fx, "--kernel", "a", "--cmdline", "", "--kernel=b", "--cpus=3",
			    "--cpus", "2"));
	assert_string_equal(fx->cfg.cmdline, "");
	assert_string_equal(fx->cfg.kernel, "b");
	assert_int_equal(fx->cfg.cpus, 2);

	for (unsigned i = 0; i < ARRAY_SIZE(levels); i++) {
		assert_ok(fx, PARSE(fx, "--kernel", "k", "--log-level", levels[i].name));
		assert_int_equal(fx->cfg.log_level, levels[i].level);
	}

	/* A value may begin with "--" when written with '=', or when it is no option's name. */
	assert_ok(fx, PARSE(fx, "--kernel", "k", "--cmdline=--cpus", "--initrd", "--x"));
	assert_string_equal(fx->cfg.cmdline, "--cpus");
	assert_string_equal(fx->cfg.initrd, "--x");
	assert_ok(fx, PARSE(fx, "--kernel", "/abs/bzImage", "--cmdline", "a=b c=d,e"));
	assert_string_equal(fx->cfg.kernel, "/abs/bzImage");
	assert_string_equal(fx->cfg.cmdline, "a=b c=d,e");
}

static void serial_modes(void **state)
{
	struct fixture *fx = *state;

	assert_ok(fx, PARSE(fx, "--kernel", "k", "--serial", "none"));
	assert_int_equal(fx->cfg.serial, SERIAL_NONE);
	assert_null(fx->cfg.serial_path);
	assert_ok(fx, PARSE(fx, "--kernel", "k", "--serial=file=/var/log/a,,b.log"));
	assert_int_equal(fx->cfg.serial, SERIAL_FILE);
	assert_string_equal(fx->cfg.serial_path, "/var/log/a,b.log");
	/* Switching away from a file forgets the path. */
	assert_ok(fx, PARSE(fx, "--kernel", "k", "--serial", "file=x", "--serial", "stdio"));
	assert_int_equal(fx->cfg.serial, SERIAL_STDIO);
	assert_null(fx->cfg.serial_path);

	/* A pty, and a log beside the terminal or the pty; a new mode forgets the old log. */
	assert_ok(fx, PARSE(fx, "--kernel", "k", "--serial", "pty"));
	assert_int_equal(fx->cfg.serial, SERIAL_PTY);
	assert_null(fx->cfg.serial_log);
	assert_ok(fx, PARSE(fx, "--kernel", "k", "--serial", "stdio,log=/tmp/con.log"));
	assert_int_equal(fx->cfg.serial, SERIAL_STDIO);
	assert_string_equal(fx->cfg.serial_log, "/tmp/con.log");
	assert_ok(fx, PARSE(fx, "--kernel", "k", "--serial", "pty,log=/l", "--serial", "pty"));
	assert_int_equal(fx->cfg.serial, SERIAL_PTY);
	assert_null(fx->cfg.serial_log);

	assert_error(fx, PARSE(fx, "--kernel", "k", "--serial", "tty"),
		     "vmm: --serial 'tty': unknown serial mode: use stdio, pty, file=PATH or none");
	assert_error(fx, PARSE(fx, "--kernel", "k", "--serial", "file"), "needs a path: file=PATH");
	assert_error(fx, PARSE(fx, "--kernel", "k", "--serial", "file="), "needs a path");
	assert_error(fx, PARSE(fx, "--kernel", "k", "--serial", "stdio,none"),
		     "after the mode, only log=FILE");
	assert_error(fx, PARSE(fx, "--kernel", "k", "--serial", "stdio=1"), "unknown serial mode");
	assert_error(fx, PARSE(fx, "--kernel", "k", "--serial", "file=a,"), "then log=FILE");
	assert_error(fx, PARSE(fx, "--kernel", "k", "--serial", "file=a,readonly=on"),
		     "only log=FILE");
	assert_error(fx, PARSE(fx, "--kernel", "k", "--serial", "stdio,log="), "only log=FILE");
	assert_error(fx, PARSE(fx, "--kernel", "k", "--serial", "file=a,log=b"),
		     "log=FILE goes with stdio or pty");
	assert_error(fx, PARSE(fx, "--kernel", "k", "--serial", "stdio,log=a,log=b"),
		     "use stdio, pty, file=PATH or none, then log=FILE");
}

static void help_and_version(void **state)
{
	struct fixture *fx = *state;

	/* No kernel needed, and other values are not checked. */
	assert_ok(fx, PARSE(fx, "--help"));
	assert_true(fx->cfg.help);
	assert_ok(fx, PARSE(fx, "--version"));
	assert_true(fx->cfg.version);
	assert_false(fx->cfg.help);
	assert_ok(fx, PARSE(fx, "--cpus", "0", "--config", "/nonexistent.conf", "--help"));
	assert_true(fx->cfg.help);
	/* Unknown options still are errors. */
	assert_error(fx, PARSE(fx, "--help", "--frobnicate"), "unknown option '--frobnicate'");
	assert_error(fx, PARSE(fx, "--help=yes"), "vmm: option '--help' takes no value");
	assert_error(fx, PARSE(fx, "--version=1"), "option '--version' takes no value");
}

static void usage_text(void **state)
{
	const char *u = config_usage();
	static const char *const want[] = {
		"Usage: vmm",	     "--config FILE",  "--kernel FILE", "--initrd FILE",
		"--cmdline STR",     "--cpus N",       "--memory SIZE", "--serial MODE",
		"--timeout SECONDS", "--log-level LEVEL", "--help",	    "--version",
		"\"console=ttyS0\"", "1..254",	       "default: 512M", "default: warn",
		"default: stdio",    "16M..1T",	       "Exit status:",	"124",
		"0xf4",		     "0xfef00000",     "Ctrl-A x quits; Ctrl-A Ctrl-A",
		"--transport T", "--legacy", "--rng [source=PATH]", "--console MODE", "--disk path=FILE",
		"--scsi path=FILE", "--net tap=NAME", "--sandbox on|off", "--api-socket PATH",
		"--on-panic ACTION", "--on-reboot ACTION", "120", "121", "122", "123",
	};

	for (unsigned i = 0; i < ARRAY_SIZE(want); i++) {
		if (!strstr(u, want[i]))
			fail_msg("usage lacks '%s'", want[i]);
	}
	for (const char *line = u; *line; line = strchr(line, '\n') + 1)
		assert_true(strchr(line, '\n') - line <= 80);
}

static void command_line_errors(void **state)
{
	struct fixture *fx = *state;

	assert_error(fx, PARSE(fx, "--kernel", "k", "--foo"),
		     "vmm: unknown option '--foo' (see vmm --help)");
	assert_error(fx, PARSE(fx, "--foo=bar"), "vmm: unknown option '--foo' (see vmm --help)");
	assert_error(fx, PARSE(fx, "-h"), "unknown option '-h'");
	assert_error(fx, PARSE(fx, "--"), "unknown option '--'");
	/* No abbreviations. */
	assert_error(fx, PARSE(fx, "--kern", "k"), "unknown option '--kern'");
	assert_error(fx, PARSE(fx, "--kernel", "k", "extra"), "unexpected argument 'extra'");
	assert_error(fx, PARSE(fx, "bzImage"), "unexpected argument 'bzImage'");
	assert_error(fx, PARSE(fx, "--kernel"), "vmm: option '--kernel' needs a value");
	assert_error(fx, PARSE(fx, "--kernel", "--cpus", "2"), "option '--kernel' needs a value");
	assert_error(fx, PARSE(fx, "--kernel="), "option '--kernel' needs a value");
	assert_error(fx, PARSE(fx, "--kernel", "k", "--initrd", ""),
		     "option '--initrd' needs a value");
	assert_error(fx, PARSE(fx, "--config"), "option '--config' needs a value");
	assert_error(fx, PARSE(fx, "--config="), "option '--config' needs a value");
	assert_error(fx, PARSE(fx),
		     "vmm: no kernel given: use --kernel FILE or kernel = FILE in [vm]");
	assert_error(fx, PARSE(fx, "--cpus", "2"), "no kernel given");

	assert_error(fx, PARSE(fx, "--kernel", "k", "--cpus", "two"),
		     "vmm: --cpus 'two': not a number");
	assert_error(fx, PARSE(fx, "--kernel", "k", "--cpus", "-1"), "--cpus '-1': not a number");
	assert_error(fx, PARSE(fx, "--kernel", "k", "--cpus", "0"),
		     "vmm: --cpus '0': out of range: must be 1..254");
	assert_error(fx, PARSE(fx, "--kernel", "k", "--cpus", "255"),
		     "out of range: must be 1..254");
	assert_error(fx, PARSE(fx, "--kernel", "k", "--cpus", "99999999999"), "must be 1..254");
	assert_error(fx, PARSE(fx, "--kernel", "k", "--memory", "lots"),
		     "vmm: --memory 'lots': not a size");
	assert_error(fx, PARSE(fx, "--kernel", "k", "--memory", "-512M"), "not a size");
	assert_error(fx, PARSE(fx, "--kernel", "k", "--memory", "8M"),
		     "vmm: --memory '8M': out of range: must be 16M..1T");
	assert_error(fx, PARSE(fx, "--kernel", "k", "--memory", "2T"), "must be 16M..1T");
	assert_error(fx, PARSE(fx, "--kernel", "k", "--memory", "99999999999999999999"),
		     "must be 16M..1T");
	assert_error(fx, PARSE(fx, "--kernel", "k", "--memory", "16777217"),
		     "'16777217': not a multiple of 4K");
	assert_error(fx, PARSE(fx, "--kernel", "k", "--timeout", "1m"),
		     "--timeout '1m': not a whole number of seconds");
	assert_error(fx, PARSE(fx, "--kernel", "k", "--timeout", "4294967296"),
		     "out of range: must be 0..4294967295");
	assert_error(fx, PARSE(fx, "--kernel", "k", "--log-level", "verbose"),
		     "--log-level 'verbose': unknown log level: use error, warn, info or debug");
	assert_error(fx, PARSE(fx, "--kernel", "k", "--sandbox", "maybe"),
		     "--sandbox 'maybe': use on or off");
	assert_error(fx, PARSE(fx, "--kernel", "k", "--on-panic", "reboot"),
		     "--on-panic 'reboot': use exit, pause or restart");
	assert_error(fx, PARSE(fx, "--kernel", "k", "--on-reboot", "pause"),
		     "--on-reboot 'pause': use exit or restart");
	assert_error(fx, PARSE(fx, "--kernel", "k", "--balloon", "stats_period=2d"),
		     "--balloon stats_period '2d': not a whole number of seconds");
	assert_error(fx, PARSE(fx, "--kernel", "k", "--balloon", "size=lots"), "not a size");
	assert_error(fx, PARSE(fx, "--kernel", "k", "--balloon", "bogus=1"), "unknown item 'bogus'");
}

static void balloon_options(void **state)
{
	struct fixture *fx = *state;
	char want[200];

	/* The control socket: a path; '-' and '_' alike in names, in a file as on the command line. */
	assert_ok(fx, PARSE(fx, "--kernel", "k", "--api-socket", "run/vm.sock"));
	assert_string_equal(fx->cfg.api_socket, "run/vm.sock");
	assert_ok(fx, PARSE(fx, "--kernel", "k", "--api_socket=x.sock"));
	assert_string_equal(fx->cfg.api_socket, "x.sock");
	assert_ok(fx, PARSE_CONF(fx, "[vm]\nkernel = k\napi_socket = vm.sock\nlog_level = info\n"));
	snprintf(want, sizeof(want), "%s/vm.sock", fx->dir);
	assert_string_equal(fx->cfg.api_socket, want);
	assert_int_equal(fx->cfg.log_level, LOG_INFO);
	assert_error(fx, PARSE(fx, "--kernel", "k", "--api-socket",
			       "/a/very/long/path/that/goes/on/and/on/and/on/and/on/and/on/and/on/and/"
			       "on/and/on/and/on/and/on/and/on/and/on/and/on.sock"),
		     "too long for a unix socket");
	/* --dump-dtb: a path on arm64; x86 has no device tree to write. */
#ifdef __aarch64__
	assert_ok(fx, PARSE(fx, "--kernel", "k", "--dump-dtb", "vm.dtb"));
	assert_string_equal(fx->cfg.dump_dtb, "vm.dtb");
#else
	assert_error(fx, PARSE(fx, "--kernel", "k", "--dump-dtb", "vm.dtb"),
		     "an x86 guest has no device tree");
	assert_error(fx, PARSE_CONF(fx, "[vm]\nkernel = k\ndump_dtb = vm.dtb\n"),
		     "an x86 guest has no device tree");
#endif

	assert_ok(fx, PARSE(fx, "--kernel", "k"));
	assert_false(fx->cfg.balloon.enabled);
	assert_ok(fx, PARSE(fx, "--kernel", "k", "--balloon"));
	assert_true(fx->cfg.balloon.enabled);
	assert_int_equal(fx->cfg.balloon.size, 0);
	assert_ok(fx, PARSE(fx, "--kernel", "k", "--balloon",
			    "size=256M,deflate_on_oom=on,free_page_reporting=on,stats_period=5,"
			    "transport=mmio,legacy=on"));
	assert_int_equal(fx->cfg.balloon.size, 256 << 20);
	assert_true(fx->cfg.balloon.deflate_on_oom);
	assert_true(fx->cfg.balloon.free_page_reporting);
	assert_int_equal(fx->cfg.balloon.stats_period, 5);
	assert_int_equal(fx->cfg.balloon.v.transport, TRANSPORT_MMIO);
	assert_int_equal(fx->cfg.balloon.v.legacy, 1);
	assert_ok(fx, PARSE_CONF(fx, "[vm]\nkernel = k\n[balloon]\nsize = 1G\nstats_period = 1\n"));
	assert_true(fx->cfg.balloon.enabled);
	assert_int_equal(fx->cfg.balloon.size, 1ULL << 30);
	assert_int_equal(fx->cfg.balloon.stats_period, 1);
}

/* --vsock: the CID (the spec's reserved ones refused), named in later messages as given; no
 * transitional virtio-pci device exists for it. */
static void vsock_options(void **state)
{
	struct fixture *fx = *state;
	char want[200];

	assert_ok(fx, PARSE(fx, "--kernel", "k"));
	assert_false(fx->cfg.vsock.enabled);
	assert_ok(fx, PARSE(fx, "--kernel", "k", "--vsock", "cid=3"));
	assert_true(fx->cfg.vsock.enabled);
	assert_int_equal(fx->cfg.vsock.cid, 3);
	assert_string_equal(fx->cfg.vsock.origin, "--vsock cid=3");
	assert_ok(fx, PARSE(fx, "--kernel", "k", "--vsock", "4294967294"));
	assert_int_equal(fx->cfg.vsock.cid, 4294967294u);
	assert_ok(fx, PARSE(fx, "--kernel", "k", "--vsock", "cid=9,transport=mmio,legacy=on"));
	assert_int_equal(fx->cfg.vsock.v.transport, TRANSPORT_MMIO);
	assert_int_equal(fx->cfg.vsock.v.legacy, 1);
	for (const char *const *c = (const char *const[]){ "0", "1", "2", "4294967295",
							   "4294967296", "-3", "0x10", NULL };
	     *c; c++) {
		snprintf(want, sizeof(want), "cid=%s", *c);
		assert_error(fx, PARSE(fx, "--kernel", "k", "--vsock", want), "--vsock cid");
	}
	assert_error(fx, PARSE(fx, "--kernel", "k", "--vsock", "transport=mmio"), "has no cid=N");
	assert_error(fx, PARSE(fx, "--kernel", "k", "--vsock", "cid=5,legacy=on"),
		     "no transitional virtio-pci device");
	/* --legacy for every device leaves this one modern on virtio-pci (devices.c). */
	assert_ok(fx, PARSE(fx, "--kernel", "k", "--legacy", "--vsock", "cid=5"));
	assert_ok(fx, PARSE(fx, "--kernel", "k", "--legacy", "--vsock", "cid=5,legacy=off"));
	assert_error(fx, PARSE(fx, "--kernel", "k", "--vsock", "cid=5,port=1"),
		     "unknown item 'port'");
	assert_ok(fx, PARSE_CONF(fx, "[vm]\nkernel = k\n[vsock]\ncid = 77\n"));
	assert_int_equal(fx->cfg.vsock.cid, 77);
	snprintf(want, sizeof(want), "%s:4: cid '77'", fx->conf);
	assert_string_equal(fx->cfg.vsock.origin, want);
	assert_error(fx, PARSE_CONF(fx, "[vm]\nkernel = k\n[vsock]\ncid = 7\n[vsock]\ncid = 8\n"),
		     "second [vsock] section");
}

/* ---- the config file ---- */

static void config_file_values_and_paths(void **state)
{
	struct fixture *fx = *state;
	char want[200];

	assert_ok(fx, PARSE_CONF(fx, "; a comment\n"
				     "# another\n"
				     "\n"
				     "[vm]\n"
				     "kernel = vmlinuz\n"
				     "  initrd=sub/initrd.img   ; inline comment\n"
				     "\tcmdline = console=ttyS0 root=/dev/vda rw\n"
				     "cpus = 2\n"
				     "memory = 1G\n"
				     "serial = file=console.log\n"
				     "timeout = 60\n"
				     "log-level = info\n"
				     "sandbox = off\n"
				     "on-panic = pause\n"));
	snprintf(want, sizeof(want), "%s/vmlinuz", fx->dir);
	assert_string_equal(fx->cfg.kernel, want);
	snprintf(want, sizeof(want), "%s/sub/initrd.img", fx->dir);
	assert_string_equal(fx->cfg.initrd, want);
	assert_string_equal(fx->cfg.cmdline, "console=ttyS0 root=/dev/vda rw");
	assert_int_equal(fx->cfg.cpus, 2);
	assert_int_equal(fx->cfg.memory, 1ULL << 30);
	assert_int_equal(fx->cfg.serial, SERIAL_FILE);
	snprintf(want, sizeof(want), "%s/console.log", fx->dir);
	assert_string_equal(fx->cfg.serial_path, want);
	assert_int_equal(fx->cfg.timeout, 60);
	assert_int_equal(fx->cfg.log_level, LOG_INFO);
	assert_false(fx->cfg.sandbox);
	assert_int_equal(fx->cfg.on_panic, PANIC_PAUSE);

	/* Absolute paths stay; CRLF line ends and a BOM are fine; values may be empty when
	 * allowed; unset keys keep their defaults. */
	assert_ok(fx, PARSE_CONF(fx, "\xef\xbb\xbf[vm]\r\nkernel = /boot/vmlinuz\r\n"
				     "cmdline =\r\n"));
	assert_string_equal(fx->cfg.kernel, "/boot/vmlinuz");
	assert_string_equal(fx->cfg.cmdline, "");
	assert_null(fx->cfg.initrd);
	assert_int_equal(fx->cfg.cpus, 1);
	assert_int_equal(fx->cfg.memory, CONFIG_DEFAULT_MEMORY);
}

static void config_file_relative_to_cwd(void **state)
{
	struct fixture *fx = *state;
	char cwd[PATH_MAX];

	/* Named without a directory, the file's directory is the working directory: paths in it
	 * are kept as written. */
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(fx->dir), 0);
	write_file("vm.conf", "[vm]\nkernel = ../build/guest/vmlinuz\nserial = file=log\n");
	assert_ok(fx, PARSE(fx, "--config=vm.conf"));
	assert_int_equal(chdir(cwd), 0);
	assert_string_equal(fx->cfg.kernel, "../build/guest/vmlinuz");
	assert_string_equal(fx->cfg.serial_path, "log");
}

static void command_line_overrides_file(void **state)
{
	struct fixture *fx = *state;
	char want[200];

	write_file(fx->conf, "[vm]\n"
			     "kernel = vmlinuz\n"
			     "initrd = initrd.img\n"
			     "cpus = 2\n"
			     "memory = 1G\n"
			     "serial = none\n"
			     "cmdline = from-file\n");
	/* Before or after --config, the command line wins; its paths are cwd-relative. */
	assert_ok(fx, PARSE(fx, "--cpus", "4", "--config", fx->conf, "--kernel=bz", "--serial",
			    "file=out.log"));
	assert_int_equal(fx->cfg.cpus, 4);
	assert_string_equal(fx->cfg.kernel, "bz");
	assert_int_equal(fx->cfg.serial, SERIAL_FILE);
	assert_string_equal(fx->cfg.serial_path, "out.log");
	snprintf(want, sizeof(want), "%s/initrd.img", fx->dir);
	assert_string_equal(fx->cfg.initrd, want); /* not overridden: from the file */
	assert_int_equal(fx->cfg.memory, 1ULL << 30);
	assert_string_equal(fx->cfg.cmdline, "from-file");

	/* A bad file is reported even if the command line would override the key. */
	write_file(fx->conf, "[vm]\nkernel = k\ncpus = 0\n");
	assert_file_error(fx, PARSE(fx, "--config", fx->conf, "--cpus", "2"), 3,
			  "cpus '0': out of range: must be 1..254");
}

static void config_file_errors(void **state)
{
	struct fixture *fx = *state;
	char want[200];

	/* Missing, unreadable. */
	snprintf(want, sizeof(want), "vmm: cannot read config file '%s/nope.conf': No such file",
		 fx->dir);
	snprintf(fx->conf, sizeof(fx->conf), "%s/nope.conf", fx->dir);
	assert_error(fx, PARSE(fx, "--config", fx->conf), want);
	snprintf(want, sizeof(want), "vmm: cannot read config file '%s': Is a directory", fx->dir);
	assert_error(fx, PARSE(fx, "--config", fx->dir), want);
	snprintf(fx->conf, sizeof(fx->conf), "%s/vm.conf", fx->dir);
	if (geteuid() != 0) {
		write_file(fx->conf, "[vm]\nkernel = k\n");
		assert_int_equal(chmod(fx->conf, 0), 0);
		assert_error(fx, PARSE(fx, "--config", fx->conf), "Permission denied");
	}
	unlink(fx->conf);

	/* Malformed lines, at the right line, and the first error wins. */
	assert_file_error(fx, PARSE_CONF(fx, "[vm]\nkernel = k\nthis is not ini\ncpus = x\n"), 3,
			  "malformed line: expected 'key = value' or '[section]'");
	assert_file_error(fx, PARSE_CONF(fx, "[vm]\nkernel = k\n[vm\n"), 3, "malformed line");
	assert_file_error(fx, PARSE_CONF(fx, "[vm]\nkernel = k\ncpus"), 3, "malformed line");
	/* An indented line is no continuation of the value above it. */
	assert_file_error(fx, PARSE_CONF(fx, "[vm]\ncmdline = a\n   b\nkernel = k\n"), 3,
			  "malformed line");

	/* Sections and keys. */
	assert_file_error(fx, PARSE_CONF(fx, "[vm]\nkernel = k\n\n[floppy]\npath = x\n"), 4,
			  "unknown section [floppy] (known: [vm], [rng], [console], [disk], [scsi], [net], [fs], [balloon], [vsock])");
	assert_file_error(fx, PARSE_CONF(fx, "\n[vm]\n[extra]\n"), 3, "unknown section [extra]");
	assert_file_error(fx, PARSE_CONF(fx, "[vm]\nkernel = k\ncpus = 2\nfoo = 1\n"), 4,
			  "unknown key 'foo' in [vm]");
	assert_file_error(fx, PARSE_CONF(fx, "[vm]\nKernel = k\n"), 2, "unknown key 'Kernel'");
	assert_file_error(fx, PARSE_CONF(fx, "kernel = k\n[vm]\n"), 1,
			  "key 'kernel' is outside any section: put it under [vm]");
	assert_file_error(fx, PARSE_CONF(fx, "[vm]\nkernel = k\ncpus = 2\ncpus = 3\n"), 4,
			  "duplicate key 'cpus' (first set on line 3)");
	assert_file_error(fx, PARSE_CONF(fx, "[vm]\ncpus = 2\n[vm]\nkernel = k\n"), 3,
			  "second [vm] section (the first is on line 1)");
	assert_file_error(fx, PARSE_CONF(fx, "[vm]\nconfig = other.conf\n"), 2,
			  "'config' is a command-line option, not a config file key");
	assert_file_error(fx, PARSE_CONF(fx, "[vm]\nhelp = 1\n"), 2,
			  "'help' is a command-line option");

	/* Values, named with the file and line. */
	assert_file_error(fx, PARSE_CONF(fx, "[vm]\nkernel = k\nmemory = 12Q\n"), 3,
			  "memory '12Q': not a size");
	assert_file_error(fx, PARSE_CONF(fx, "[vm]\nkernel = k\n\nserial = tty\n"), 4,
			  "serial 'tty': unknown serial mode");
	assert_file_error(fx, PARSE_CONF(fx, "[vm]\nlog-level = loud\n"), 2,
			  "log-level 'loud': unknown log level");
	assert_file_error(fx, PARSE_CONF(fx, "[vm]\ntimeout = -1\n"), 2,
			  "timeout '-1': not a whole number of seconds");
	assert_file_error(fx, PARSE_CONF(fx, "[vm]\nkernel =\n"), 2, "key 'kernel' needs a value");
	assert_file_error(fx, PARSE_CONF(fx, "[vm]\n= 3\n"), 2, "unknown key ''");

	/* Lines inih would cut short or misread. */
	{
		char text[400];

		snprintf(text, sizeof(text), "[vm]\nkernel = k\ncmdline = %0250d\n", 0);
		assert_file_error(fx, PARSE_CONF(fx, text), 3, "line longer than 197 characters");
		/* The longest line that fits. */
		snprintf(text, sizeof(text), "[vm]\nkernel = k\ncmdline = %0187d\n", 0);
		assert_ok(fx, PARSE_CONF(fx, text));
		assert_int_equal(strlen(fx->cfg.cmdline), 187);
	}
	{
		FILE *f = fopen(fx->conf, "w");

		assert_non_null(f);
		assert_int_equal(fwrite("[vm]\nkernel = k\0x\n", 1, 19, f), 19);
		fclose(f);
	}
	assert_file_error(fx, PARSE(fx, "--config", fx->conf), 2, "NUL byte");

	/* An empty file is fine, but still names no kernel. */
	assert_error(fx, PARSE_CONF(fx, ""), "no kernel given");
	assert_error(fx, PARSE_CONF(fx, "[vm]\nkernel = k\n", "--config", fx->conf),
		     "option '--config' given twice");
}

/* ---- sub-options ---- */

static void subopts_split(void **state)
{
	struct config_subopt *it;
	int n;

	n = config_subopts_split("path=disk.img,readonly=on,direct", &it);
	assert_int_equal(n, 3);
	assert_string_equal(it[0].key, "path");
	assert_string_equal(it[0].value, "disk.img");
	assert_string_equal(it[1].key, "readonly");
	assert_string_equal(it[1].value, "on");
	assert_string_equal(it[2].key, "direct");
	assert_null(it[2].value);
	free(it);

	n = config_subopts_split("path=a,,b=c,,,x=", &it);
	assert_int_equal(n, 2);
	assert_string_equal(it[0].key, "path");
	assert_string_equal(it[0].value, "a,b=c,");
	assert_string_equal(it[1].key, "x");
	assert_string_equal(it[1].value, "");
	free(it);

	n = config_subopts_split("stdio", &it);
	assert_int_equal(n, 1);
	assert_string_equal(it[0].key, "stdio");
	assert_null(it[0].value);
	free(it);

	assert_int_equal(config_subopts_split("", &it), -EINVAL);
	assert_int_equal(config_subopts_split("a=1,", &it), -EINVAL);
	assert_int_equal(config_subopts_split(",a=1", &it), -EINVAL);
	assert_int_equal(config_subopts_split("a=1,,,", &it), -EINVAL);
	assert_int_equal(config_subopts_split("=x", &it), -EINVAL);
	assert_int_equal(config_subopts_split("a,=x", &it), -EINVAL);
}

static void free_is_idempotent(void **state)
{
	struct vm_config cfg = { 0 };

	config_free(&cfg);
	config_free(&cfg);
}

static void virtio_options(void **state)
{
	struct fixture *fx = *state;
	const struct console_port_config *p;

	/* Defaults: pci, modern, no devices. */
	assert_ok(fx, PARSE(fx, "--kernel", "k"));
	assert_int_equal(fx->cfg.transport, TRANSPORT_PCI);
	assert_false(fx->cfg.legacy);
	assert_false(fx->cfg.rng.enabled);
	assert_int_equal(fx->cfg.nr_ports, 0);

	/* --rng alone, followed by another option, and with items. */
	assert_ok(fx, PARSE(fx, "--kernel", "k", "--rng", "--legacy", "--transport", "mmio"));
	assert_true(fx->cfg.rng.enabled);
	assert_null(fx->cfg.rng.source);
	assert_true(fx->cfg.legacy);
	assert_int_equal(config_transport(&fx->cfg, &fx->cfg.rng.v), TRANSPORT_MMIO);
	assert_true(config_legacy(&fx->cfg, &fx->cfg.rng.v));
	assert_ok(fx, PARSE(fx, "--kernel", "k", "--legacy", "--rng",
			    "source=/dev/urandom,transport=pci,legacy=off"));
	assert_string_equal(fx->cfg.rng.source, "/dev/urandom");
	assert_int_equal(config_transport(&fx->cfg, &fx->cfg.rng.v), TRANSPORT_PCI);
	assert_false(config_legacy(&fx->cfg, &fx->cfg.rng.v));
	assert_ok(fx, PARSE(fx, "--kernel", "k", "--rng"));
	assert_true(fx->cfg.rng.enabled);

	/* The console: port 0 first whatever the order; the last unnamed one wins. */
	assert_ok(fx, PARSE(fx, "--kernel", "k", "--console", "name=agent,socket=/s", "--console",
			    "pty", "--console", "file=/c.log", "--console", "name=log,file=/l"));
	assert_int_equal(fx->cfg.nr_ports, 3);
	p = fx->cfg.ports;
	assert_null(p[0].name);
	assert_int_equal(p[0].mode, CONS_FILE);
	assert_string_equal(p[0].path, "/c.log");
	assert_string_equal(p[1].name, "agent");
	assert_int_equal(p[1].mode, CONS_SOCKET);
	assert_string_equal(p[1].path, "/s");
	assert_string_equal(p[2].name, "log");
	assert_int_equal(p[2].mode, CONS_FILE);
	assert_int_equal(fx->cfg.serial, SERIAL_STDIO);
	assert_string_equal(fx->cfg.cmdline, "console=ttyS0");

	/* Named ports only: port 0 exists with no host side. */
	assert_ok(fx, PARSE(fx, "--kernel", "k", "--console", "socket=/s,name=a"));
	assert_int_equal(fx->cfg.nr_ports, 2);
	assert_int_equal(fx->cfg.ports[0].mode, CONS_NONE);

	/* --console stdio takes the terminal from the serial port and becomes the console. */
	assert_ok(fx, PARSE(fx, "--kernel", "k", "--console", "stdio"));
	assert_int_equal(fx->cfg.serial, SERIAL_NONE);
	assert_string_equal(fx->cfg.cmdline, "console=hvc0");
	assert_ok(fx, PARSE(fx, "--kernel", "k", "--console", "stdio", "--serial", "file=x"));
	assert_int_equal(fx->cfg.serial, SERIAL_FILE);
	assert_error(fx, PARSE(fx, "--kernel", "k", "--console", "stdio", "--serial", "stdio"),
		     "only one of them can have the terminal");

	/* Config file sections. */
	assert_ok(fx, PARSE_CONF(fx, "[vm]\nkernel = k\ntransport = mmio\nlegacy = on\n"
				     "[rng]\nsource = /dev/urandom\n"
				     "[console]\nmode = pty\n"
				     "[console]\nname = org.qemu.guest_agent.0\nsocket = /run/qga\n"
				     "transport = pci\n"));
	assert_int_equal(fx->cfg.transport, TRANSPORT_MMIO);
	assert_true(fx->cfg.legacy);
	assert_true(fx->cfg.rng.enabled);
	assert_string_equal(fx->cfg.rng.source, "/dev/urandom");
	assert_int_equal(fx->cfg.nr_ports, 2);
	assert_int_equal(fx->cfg.ports[0].mode, CONS_PTY);
	assert_string_equal(fx->cfg.ports[1].name, "org.qemu.guest_agent.0");
	assert_int_equal(config_transport(&fx->cfg, &fx->cfg.console_v), TRANSPORT_PCI);
	/* The command line overrides the file's flag. */
	assert_ok(fx, PARSE_CONF(fx, "[vm]\nkernel = k\nlegacy = on\n", "--legacy=off"));
	assert_false(fx->cfg.legacy);

	/* Bad values: one message naming the option and the item. */
	assert_error(fx, PARSE(fx, "--kernel", "k", "--transport", "usb"),
		     "--transport 'usb': unknown transport: use pci or mmio");
	assert_error(fx, PARSE(fx, "--kernel", "k", "--rng", "src=/x"), "unknown item 'src'");
	assert_error(fx, PARSE(fx, "--kernel", "k", "--rng", "legacy=maybe"),
		     "--rng legacy 'maybe': use on or off");
	assert_error(fx, PARSE(fx, "--kernel", "k", "--rng", "source="), "'source' needs a value");
	assert_error(fx, PARSE(fx, "--kernel", "k", "--console", "tty"),
		     "--console mode 'tty': unknown console mode");
	assert_error(fx, PARSE(fx, "--kernel", "k", "--console", "stdio,name=x"),
		     "a named port needs socket=PATH or file=PATH");
	assert_error(fx, PARSE(fx, "--kernel", "k", "--console", "name=a/b,file=x"),
		     "not a port name");
	assert_error(fx, PARSE(fx, "--kernel", "k", "--console", "name=a,file=x", "--console",
			       "name=a,socket=y"),
		     "two ports with that name");
	assert_error(fx, PARSE(fx, "--kernel", "k", "--console"), "option '--console' needs a value");
	assert_file_error(fx, PARSE_CONF(fx, "[vm]\nkernel = k\n[rng]\nsource = x\n[rng]\n"), 5,
			  "second [rng] section");
	assert_file_error(fx, PARSE_CONF(fx, "[vm]\nkernel = k\n[console]\nmode = serial\n"), 4,
			  "mode 'serial': unknown console mode");
	assert_file_error(fx, PARSE_CONF(fx, "[vm]\nkernel = k\nlegacy = 2\n"), 3,
			  "legacy '2': use on or off");
}

static void disk_options(void **state)
{
	struct fixture *fx = *state;
	const struct disk_config *d;

	/* Order kept; a bare word is the path; defaults. */
	assert_ok(fx, PARSE(fx, "--kernel", "k", "--disk", "root.img", "--disk",
			    "path=/d/data.img,readonly=on,serial=DATA01,queues=4,transport=mmio"));
	assert_int_equal(fx->cfg.nr_disks, 2);
	d = fx->cfg.disks;
	assert_string_equal(d[0].path, "root.img");
	assert_false(d[0].readonly);
	assert_null(d[0].serial);
	assert_int_equal(d[0].queues, 0);
	assert_int_equal(config_transport(&fx->cfg, &d[0].v), TRANSPORT_PCI);
	assert_string_equal(d[1].path, "/d/data.img");
	assert_true(d[1].readonly);
	assert_string_equal(d[1].serial, "DATA01");
	assert_int_equal(d[1].queues, 4);
	assert_int_equal(config_transport(&fx->cfg, &d[1].v), TRANSPORT_MMIO);

	/* SCSI LUNs share one controller's options. */
	assert_ok(fx, PARSE(fx, "--kernel", "k", "--scsi", "path=a.img", "--scsi",
			    "b.img,readonly=on,legacy=on"));
	assert_int_equal(fx->cfg.nr_luns, 2);
	assert_string_equal(fx->cfg.luns[0].path, "a.img");
	assert_false(fx->cfg.luns[0].readonly);
	assert_true(fx->cfg.luns[1].readonly);
	assert_true(config_legacy(&fx->cfg, &fx->cfg.scsi_v));

	/* Sections: paths relative to the file; each section one more device. */
	assert_ok(fx, PARSE_CONF(fx, "[vm]\nkernel = k\n[disk]\npath = a.img\n[disk]\npath = b.img\n"
				     "readonly = on\n[scsi]\npath = c.img\n"));
	assert_int_equal(fx->cfg.nr_disks, 2);
	assert_true(fx->cfg.disks[1].readonly);
	assert_non_null(strstr(fx->cfg.disks[0].path, "a.img"));
	assert_int_equal(fx->cfg.nr_luns, 1);

	/* Errors name the option and the item. */
	assert_error(fx, PARSE(fx, "--kernel", "k", "--disk", "readonly=on"),
		     "--disk (or [disk] section) number 1 has no path=FILE");
	assert_error(fx, PARSE(fx, "--kernel", "k", "--disk", "path=a,serial=ABCDEFGHIJKLMNOPQRSTU"),
		     "--disk serial 'ABCDEFGHIJKLMNOPQRSTU': longer than 20 bytes");
	assert_error(fx, PARSE(fx, "--kernel", "k", "--disk", "path=a,serial=a b"),
		     "not a serial");
	assert_error(fx, PARSE(fx, "--kernel", "k", "--disk", "path=a,queues=0"),
		     "--disk queues '0': out of range: must be 1..64");
	assert_error(fx, PARSE(fx, "--kernel", "k", "--disk", "path=a,cache=none"),
		     "unknown item 'cache'");
	assert_error(fx, PARSE(fx, "--kernel", "k", "--scsi", "path=a,serial=x"),
		     "unknown item 'serial'");
	assert_file_error(fx, PARSE_CONF(fx, "[vm]\nkernel = k\n[disk]\nreadonly = maybe\n"), 4,
			  "readonly 'maybe': use on or off");
}

static void net_options(void **state)
{
	struct fixture *fx = *state;
	const struct net_config *n;
	static const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0xab, 0xcd, 0xef };

	/* Order kept; a bare word is the tap; "tap=" (empty) asks for a new tap; defaults. */
	assert_ok(fx, PARSE(fx, "--kernel", "k", "--net", "tap0", "--net",
			    "tap=,mac=52:54:00:AB:cd:ef,queues=4,mtu=9000,transport=mmio,vhost=on"));
	assert_int_equal(fx->cfg.nr_nets, 2);
	n = fx->cfg.nets;
	assert_string_equal(n[0].tap, "tap0");
	assert_false(n[0].mac_set);
	assert_int_equal(n[0].queues, 0);
	assert_int_equal(n[0].mtu, 0);
	assert_false(n[0].vhost);
	assert_int_equal(config_transport(&fx->cfg, &n[0].v), TRANSPORT_PCI);
	assert_string_equal(n[1].tap, "");
	assert_true(n[1].mac_set);
	assert_memory_equal(n[1].mac, mac, 6);
	assert_int_equal(n[1].queues, 4);
	assert_int_equal(n[1].mtu, 9000);
	assert_true(n[1].vhost);
	assert_int_equal(config_transport(&fx->cfg, &n[1].v), TRANSPORT_MMIO);

	/* Sections: each one more device; an empty tap is allowed there too. */
	assert_ok(fx, PARSE_CONF(fx, "[vm]\nkernel = k\n[net]\ntap = tap1\nlegacy = on\nvhost = on\n"
				     "[net]\ntap =\n"));
	assert_int_equal(fx->cfg.nr_nets, 2);
	assert_string_equal(fx->cfg.nets[0].tap, "tap1");
	assert_true(config_legacy(&fx->cfg, &fx->cfg.nets[0].v));
	assert_true(fx->cfg.nets[0].vhost);
	assert_false(fx->cfg.nets[1].vhost);
	assert_string_equal(fx->cfg.nets[1].tap, "");

	/* Errors name the option and the item. */
	assert_error(fx, PARSE(fx, "--kernel", "k", "--net", "mac=52:54:00:00:00:01"),
		     "--net (or [net] section) number 1 has no tap=NAME (tap= to create one)");
	assert_error(fx, PARSE(fx, "--kernel", "k", "--net", "tap=a/b"),
		     "--net tap 'a/b': not an interface name");
	assert_error(fx, PARSE(fx, "--kernel", "k", "--net", "tap=averyveryverylongname"),
		     "not an interface name (1 to 15 bytes)");
	assert_error(fx, PARSE(fx, "--kernel", "k", "--net", "tap0,mac=52:54:00:00:00"),
		     "--net mac '52:54:00:00:00': not a MAC address");
	assert_error(fx, PARSE(fx, "--kernel", "k", "--net", "tap0,mac=52:54:00:00:00:0g"),
		     "not a MAC address");
	assert_error(fx, PARSE(fx, "--kernel", "k", "--net", "tap0,mac=01:00:5e:00:00:01"),
		     "a multicast address");
	assert_error(fx, PARSE(fx, "--kernel", "k", "--net", "tap0,mac=00:00:00:00:00:00"),
		     "the all-zero address");
	assert_error(fx, PARSE(fx, "--kernel", "k", "--net", "tap0,queues=17"),
		     "--net queues '17': out of range: must be 1..16");
	assert_error(fx, PARSE(fx, "--kernel", "k", "--net", "tap0,mtu=67"),
		     "--net mtu '67': out of range: must be 68..65535");
	assert_error(fx, PARSE(fx, "--kernel", "k", "--net", "tap0,vhost=bogus"),
		     "--net vhost 'bogus': use on or off");
	assert_file_error(fx, PARSE_CONF(fx, "[vm]\nkernel = k\n[net]\ntap = t\nvhost = maybe\n"), 5,
			  "vhost 'maybe': use on or off");
	assert_file_error(fx, PARSE_CONF(fx, "[vm]\nkernel = k\n[net]\ntap = t\nqueues = many\n"), 5,
			  "queues 'many': not a number");
}

/* Issue 21: --fs and [fs]: a share each, path relative to the config file, a tag each, checked. */
static void fs_options(void **state)
{
	struct fixture *fx = *state;
	const struct fs_config *f;
	char want[300];

	assert_ok(fx, PARSE(fx, "--kernel", "k", "--fs", "/srv,tag=share", "--fs",
			    "path=src,tag=src,readonly=on,transport=mmio,legacy=on"));
	assert_int_equal(fx->cfg.nr_shares, 2);
	f = fx->cfg.shares;
	assert_string_equal(f[0].path, "/srv");
	assert_string_equal(f[0].tag, "share");
	assert_false(f[0].readonly);
	assert_int_equal(config_transport(&fx->cfg, &f[0].v), TRANSPORT_PCI);
	assert_string_equal(f[0].origin, "--fs path=/srv");
	assert_string_equal(f[1].path, "src");
	assert_true(f[1].readonly);
	assert_int_equal(config_transport(&fx->cfg, &f[1].v), TRANSPORT_MMIO);
	assert_true(config_legacy(&fx->cfg, &f[1].v));

	assert_ok(fx, PARSE_CONF(fx, "[vm]\nkernel = k\n[fs]\npath = d\ntag = t\n[fs]\npath = /e\ntag = u\n"));
	assert_int_equal(fx->cfg.nr_shares, 2);
	snprintf(want, sizeof(want), "%s/d", fx->dir);
	assert_string_equal(fx->cfg.shares[0].path, want);
	snprintf(want, sizeof(want), "%s:4: path '%s/d'", fx->conf, fx->dir);
	assert_string_equal(fx->cfg.shares[0].origin, want);
	assert_string_equal(fx->cfg.shares[1].tag, "u");

	assert_error(fx, PARSE(fx, "--kernel", "k", "--fs", "/srv"),
		     "--fs (or [fs] section) number 1 has no tag=TAG (the name the guest mounts)");
	assert_error(fx, PARSE(fx, "--kernel", "k", "--fs", "tag=x"),
		     "--fs (or [fs] section) number 1 has no path=DIR");
	assert_error(fx, PARSE(fx, "--kernel", "k", "--fs", "/a,tag=x", "--fs", "/b,tag=x"),
		     "--fs number 1 and 2 have the same tag=x: the guest could mount only one of "
		     "them");
	assert_error(fx, PARSE(fx, "--kernel", "k", "--fs", "/a,tag=a b"),
		     "--fs tag 'a b': a mount tag has no blanks or control characters");
	assert_error(fx, PARSE(fx, "--kernel", "k", "--fs", "/a,tag=x,cache=loose"),
		     "unknown item 'cache'");
	/* A transitional virtio-pci device has 256 bytes of legacy I/O BAR for its registers and
	 * the tag: a longer tag is for the modern interface or virtio-mmio. */
	char tag[CONFIG_TAG_MAX + 8];
	memset(tag, 't', sizeof(tag));
	strcpy(tag + CONFIG_TAG_MAX_LEGACY_PCI, ",legacy=on");
	snprintf(want, sizeof(want), "/a,tag=%s", tag);
	assert_ok(fx, PARSE(fx, "--kernel", "k", "--fs", want));
	memset(tag, 't', sizeof(tag));
	strcpy(tag + CONFIG_TAG_MAX_LEGACY_PCI + 1, ",legacy=on");
	snprintf(want, sizeof(want), "/a,tag=%s", tag);
	assert_error(fx, PARSE(fx, "--kernel", "k", "--fs", want),
		     "--fs number 1: a tag of 231 bytes does not fit the legacy interface of "
		     "virtio-pci (at most 230): a shorter tag, legacy=off or transport=mmio");
	tag[CONFIG_TAG_MAX_LEGACY_PCI + 1] = 0;
	snprintf(want, sizeof(want), "/a,tag=%s", tag);
	assert_ok(fx, PARSE(fx, "--kernel", "k", "--fs", want));
	assert_error(fx, PARSE(fx, "--kernel", "k", "--legacy", "--fs", want),
		     "does not fit the legacy interface");
	snprintf(want, sizeof(want), "/a,tag=%s,legacy=on,transport=mmio", tag);
	assert_ok(fx, PARSE(fx, "--kernel", "k", "--fs", want));
	assert_file_error(fx, PARSE_CONF(fx, "[vm]\nkernel = k\n[fs]\npath = d\nreadonly = maybe\n"),
			  5, "readonly 'maybe'");
}

/* Issue 20: a path (or tap) keeps where it came from, so that what is found wrong with it later
 * (a file that cannot be opened) names the config file's line, or the command line's spelling. */
static void origins(void **state)
{
	struct fixture *fx = *state;
	char want[300];

	assert_ok(fx, PARSE_CONF(fx, "[vm]\n"
				     "kernel = vmlinuz\n"
				     "initrd = /abs/initrd.img\n"
				     "serial = file=console.log\n"
				     "[rng]\n"
				     "source = rnd\n"
				     "[console]\n"
				     "name = p\n"
				     "socket = p.sock\n"
				     "[disk]\n"
				     "path = a.img\n"
				     "[scsi]\n"
				     "path = b.img\n"
				     "[net]\n"
				     "tap = tap7\n"));
	snprintf(want, sizeof(want), "%s:2: kernel '%s/vmlinuz'", fx->conf, fx->dir);
	assert_string_equal(fx->cfg.kernel_origin, want);
	snprintf(want, sizeof(want), "%s:3: initrd '/abs/initrd.img'", fx->conf);
	assert_string_equal(fx->cfg.initrd_origin, want);
	snprintf(want, sizeof(want), "%s:4: serial 'file=%s/console.log'", fx->conf, fx->dir);
	assert_string_equal(fx->cfg.serial_origin, want);
	snprintf(want, sizeof(want), "%s:6: source '%s/rnd'", fx->conf, fx->dir);
	assert_string_equal(fx->cfg.rng.origin, want);
	assert_int_equal(fx->cfg.nr_ports, 2); /* port 0 (none), then p */
	snprintf(want, sizeof(want), "%s:9: socket '%s/p.sock'", fx->conf, fx->dir);
	assert_string_equal(fx->cfg.ports[1].origin, want);
	snprintf(want, sizeof(want), "%s:11: path '%s/a.img'", fx->conf, fx->dir);
	assert_string_equal(fx->cfg.disks[0].origin, want);
	snprintf(want, sizeof(want), "%s:13: path '%s/b.img'", fx->conf, fx->dir);
	assert_string_equal(fx->cfg.luns[0].origin, want);
	snprintf(want, sizeof(want), "%s:15: tap 'tap7'", fx->conf);
	assert_string_equal(fx->cfg.nets[0].origin, want);

	/* The command line's own spelling, also where it overrides the file. */
	assert_ok(fx, PARSE(fx, "--config", fx->conf, "--kernel", "bz", "--initrd=i.img",
			    "--serial", "file=out.log", "--rng", "source=/dev/urandom", "--console",
			    "file=c.log", "--disk", "x.img,readonly=on", "--scsi", "path=y.img",
			    "--net", "tap=,mac=52:54:00:00:00:01"));
	assert_string_equal(fx->cfg.kernel_origin, "--kernel bz");
	assert_string_equal(fx->cfg.initrd_origin, "--initrd i.img");
	assert_string_equal(fx->cfg.serial_origin, "--serial file=out.log");
	assert_string_equal(fx->cfg.rng.origin, "--rng source=/dev/urandom");
	assert_string_equal(fx->cfg.ports[0].origin, "--console file=c.log");
	assert_string_equal(fx->cfg.disks[1].origin, "--disk path=x.img");
	assert_string_equal(fx->cfg.luns[1].origin, "--scsi path=y.img");
	assert_string_equal(fx->cfg.nets[1].origin, "--net tap=");
}

/* Issue 20: --initrd none drops a config file's initrd; initrd = none in a file is no initrd. */
static void initrd_none(void **state)
{
	struct fixture *fx = *state;

	write_file(fx->conf, "[vm]\nkernel = k\ninitrd = initrd.img\n");
	assert_ok(fx, PARSE(fx, "--config", fx->conf, "--initrd", "none"));
	assert_null(fx->cfg.initrd);
	assert_null(fx->cfg.initrd_origin);
	assert_ok(fx, PARSE_CONF(fx, "[vm]\nkernel = k\ninitrd = none\n"));
	assert_null(fx->cfg.initrd);
	/* Given again after none, it is back; a file named none is ./none. */
	assert_ok(fx, PARSE(fx, "--kernel", "k", "--initrd", "none", "--initrd", "./none"));
	assert_string_equal(fx->cfg.initrd, "./none");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(sizes_parse),
		cmocka_unit_test_setup_teardown(defaults, setup, teardown),
		cmocka_unit_test_setup_teardown(every_option_both_forms, setup, teardown),
		cmocka_unit_test_setup_teardown(values_and_ranges, setup, teardown),
		cmocka_unit_test_setup_teardown(balloon_options, setup, teardown),
		cmocka_unit_test_setup_teardown(serial_modes, setup, teardown),
		cmocka_unit_test_setup_teardown(help_and_version, setup, teardown),
		cmocka_unit_test(usage_text),
		cmocka_unit_test_setup_teardown(command_line_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(config_file_values_and_paths, setup, teardown),
		cmocka_unit_test_setup_teardown(config_file_relative_to_cwd, setup, teardown),
		cmocka_unit_test_setup_teardown(command_line_overrides_file, setup, teardown),
		cmocka_unit_test_setup_teardown(config_file_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(virtio_options, setup, teardown),
		cmocka_unit_test_setup_teardown(disk_options, setup, teardown),
		cmocka_unit_test_setup_teardown(fs_options, setup, teardown),
		cmocka_unit_test_setup_teardown(net_options, setup, teardown),
		cmocka_unit_test_setup_teardown(vsock_options, setup, teardown),
		cmocka_unit_test_setup_teardown(origins, setup, teardown),
		cmocka_unit_test_setup_teardown(initrd_none, setup, teardown),
		cmocka_unit_test(subopts_split),
		cmocka_unit_test(free_is_idempotent),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
