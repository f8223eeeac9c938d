/* vmm: command line -> config -> guest memory and boot images -> VM -> run -> exit status. */
#include "arch.h"
#include "config.h"
#include "devices.h"
#include "log.h"
#include "api/api.h"
#include "backend/term.h"
#include "memory.h"
#include "sandbox.h"
#include "virtio/balloon.h"
#include "virtio/virtio.h"
#include "vm.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Exit statuses (documented in --help and docs/usage.md). */

static void kick_handler(int sig)
{
	(void)sig; /* only here to make KVM_RUN return with EINTR */
}

/* Every thread starts with the process signals blocked: the main thread takes them through a
 * signalfd, the vCPU threads unblock only SIGUSR1, their kick. */
static int setup_signals(void)
{
	struct sigaction sa = { .sa_handler = kick_handler };
	sigset_t block;

	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGUSR1, &sa, NULL) < 0)
		return -1;
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGWINCH);
	return pthread_sigmask(SIG_BLOCK, &block, NULL) ? -1 : 0;
}

/* The UART's host side (devices.h): stdout and stdin, a file (created or truncated), a pty, or
 * nowhere; and the log beside it. A file that cannot be created is bad input, found out before
 * KVM is touched. */
static int open_serial(const struct vm_config *cfg, struct serial_host *s)
{
	char name[64];
	int ret;

	*s = (struct serial_host){ .out = -1, .log = -1, .in = -1, .pty_slave = -1 };
	switch (cfg->serial) {
	case SERIAL_STDIO:
		s->out = STDOUT_FILENO;
		s->in = STDIN_FILENO;
		break;
	case SERIAL_FILE:
		s->out = open(cfg->serial_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (s->out < 0) {
			log_error("%s: %s", cfg->serial_origin, strerror(errno));
			return -1;
		}
		break;
	case SERIAL_PTY:
		if ((ret = term_open_pty(&s->out, &s->pty_slave, name, sizeof(name)))) {
			log_error("--serial pty: %s", strerror(-ret));
			return -1;
		}
		s->in = s->out;
		log_notice("serial: %s", name);
		break;
	case SERIAL_NONE:
		break;
	}
	if (cfg->serial_log) {
		s->log = open(cfg->serial_log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (s->log < 0) {
			log_error("--serial log=%s: %s", cfg->serial_log, strerror(errno));
			return -1;
		}
	}
	return 0;
}

static void close_serial(const struct vm_config *cfg, struct serial_host *s)
{
	if (cfg->serial != SERIAL_STDIO && s->out >= 0)
		close(s->out);
	if (s->log >= 0)
		close(s->log);
	if (s->pty_slave >= 0)
		close(s->pty_slave);
}

/* ---- what the control socket may do to the VM (api.h) ---- */

static unsigned api_devices(void *opaque, struct api_device *out, unsigned max)
{
	struct virtio_dev *d;
	unsigned n = 0, i = 0;
	bool mmio;

	while (n < max && (d = devices_next(opaque, &i, &mmio))) {
		struct api_device *o = &out[n++];

		pthread_mutex_lock(&d->lock);
		*o = (struct api_device){ .type = d->ops->name, .transport = mmio ? "mmio" : "pci",
					  .legacy = d->legacy, .device_features = d->features,
					  .driver_features = d->driver_features, .status = d->status,
					  .queues = d->nr_queues };
		snprintf(o->name, sizeof(o->name), "%s", d->name);
		for (unsigned q = 0; q < d->nr_queues; q++) {
			o->kicks += d->queues[q].kicks;
			o->interrupts += d->queues[q].interrupts;
		}
		pthread_mutex_unlock(&d->lock);
	}
	return n;
}

static int api_balloon(void *opaque, struct balloon_info *out)
{
	struct balloon_dev *b = devices_balloon(opaque);

	if (!b)
		return -ENODEV;
	balloon_get(b, out);
	return 0;
}

static int api_resize_balloon(void *opaque, uint64_t bytes)
{
	struct balloon_dev *b = devices_balloon(opaque);

	if (!b)
		return -ENODEV;
	balloon_set_target(b, bytes);
	return 0;
}

static int api_pause(void *opaque)
{
	return vm_pause(opaque);
}

static int api_resume(void *opaque)
{
	return vm_resume(opaque);
}

static bool api_paused(void *opaque)
{
	return vm_paused(opaque);
}

static void api_power_button(void *opaque)
{
	log_info("api: vm.power-button: the guest is told its power button was pressed");
	devices_power_button(opaque);
}

/* vm.shutdown stops at once, as SIGTERM (143). vm.reboot is what the guest's own reboot does. */
static void api_stop(void *opaque, bool reboot)
{
	if (reboot) {
		log_info("api: vm.reboot: the guest is reset, as when it reboots itself");
		devices_guest_reset(opaque);
		return;
	}
	log_info("api: vm.shutdown: stopping the guest");
	vm_request_stop(opaque, VMM_EXIT_SIGNAL + SIGTERM);
}

static const struct api_ops vm_api_ops = {
	.devices = api_devices,
	.balloon = api_balloon,
	.resize_balloon = api_resize_balloon,
	.pause = api_pause,
	.resume = api_resume,
	.paused = api_paused,
	.power_button = api_power_button,
	.stop = api_stop,
};

/* Once everything is open: no capabilities, no_new_privs, Landlock on the files vmm still uses
 * (the boot images read only; a restart reloads them from the copy boot_keep made, not from
 * the files), and the filters the threads take as they start. */
static int lock_down(const struct vm_config *cfg)
{
	struct sandbox_path paths[6 + cfg->nr_disks + cfg->nr_luns + cfg->nr_ports +
				  cfg->nr_shares];
	const enum sandbox_access rw = SANDBOX_READ_WRITE;
	unsigned n = 0;
	int ret;

	if (!cfg->sandbox) {
		log_warn("--sandbox off: the guest's devices run with every capability and system "
			 "call this process has");
		return 0;
	}
	paths[n++] = (struct sandbox_path){ cfg->kernel, SANDBOX_READ };
	if (cfg->initrd)
		paths[n++] = (struct sandbox_path){ cfg->initrd, SANDBOX_READ };
	if (cfg->rng.enabled && cfg->rng.source)
		paths[n++] = (struct sandbox_path){ cfg->rng.source, SANDBOX_READ };
	if (cfg->serial == SERIAL_FILE)
		paths[n++] = (struct sandbox_path){ cfg->serial_path, rw };
	if (cfg->serial_log)
		paths[n++] = (struct sandbox_path){ cfg->serial_log, rw };
	if (cfg->api_socket) /* main removes it at exit */
		paths[n++] = (struct sandbox_path){ cfg->api_socket, SANDBOX_REMOVE };
	for (unsigned i = 0; i < cfg->nr_disks; i++)
		paths[n++] = (struct sandbox_path){ cfg->disks[i].path,
						    cfg->disks[i].readonly ? SANDBOX_READ : rw };
	for (unsigned i = 0; i < cfg->nr_luns; i++)
		paths[n++] = (struct sandbox_path){ cfg->luns[i].path,
						    cfg->luns[i].readonly ? SANDBOX_READ : rw };
	for (unsigned i = 0; i < cfg->nr_ports; i++) {
		enum cons_mode m = cfg->ports[i].mode;

		if (m == CONS_FILE || m == CONS_SOCKET)
			paths[n++] = (struct sandbox_path){ cfg->ports[i].path,
							    m == CONS_FILE ? rw : SANDBOX_REMOVE };
	}
	for (unsigned i = 0; i < cfg->nr_shares; i++)
		paths[n++] = (struct sandbox_path){ cfg->shares[i].path,
						    cfg->shares[i].readonly ? SANDBOX_TREE_READ
									    : SANDBOX_TREE };
	if ((ret = sandbox_prepare(term_restore)))
		return ret;
	return sandbox_lock(paths, n);
}

int main(int argc, char **argv)
{
	struct vm_config cfg;
	struct guest_mem mem;
	struct boot_info boot;
	struct vm vm;
	struct api api = { .epfd = -1, .stop_fd = -1 };
	struct boot_image boot_image = { 0 };
	struct serial_host serial = { .out = -1, .log = -1, .in = -1, .pty_slave = -1 };
	int ret, status;

	if (argc > 1 && !strcmp(argv[1], "ctl"))
		return api_client(argc - 2, argv + 2);
	if (config_parse(&cfg, argc, argv)) {
		config_free(&cfg);
		return VMM_EXIT_USAGE;
	}
	if (cfg.help || cfg.version) {
		if (cfg.help)
			fputs(config_usage(), stdout);
		else
			printf("vmm %s\n", VMM_VERSION);
		config_free(&cfg);
		return 0;
	}
	log_set_level(cfg.log_level);

	/* Boot images and device backends are checked before KVM is touched: bad input is exit 2
	 * on any host. */
	ret = gmem_init(&mem, cfg.memory);
	if (ret) {
		log_error("cannot map %llu bytes of guest memory: %s",
			  (unsigned long long)cfg.memory, strerror(-ret));
		config_free(&cfg);
		return VMM_EXIT_ERROR;
	}
	struct boot_mmio_dev mmio[VIRTIO_MMIO_MAX];
	int nr_mmio = devices_mmio_layout(&cfg, mmio);
	struct boot_args args = {
		.kernel = cfg.kernel, .initrd = cfg.initrd, .kernel_what = cfg.kernel_origin,
		.initrd_what = cfg.initrd_origin, .cmdline = cfg.cmdline, .cpus = cfg.cpus,
		.mmio = mmio, .nr_mmio = nr_mmio > 0 ? (unsigned)nr_mmio : 0,
	};
	if (nr_mmio < 0 || boot_load(&mem, &args, &boot) || open_serial(&cfg, &serial) ||
	    devices_check(&cfg)) {
		status = VMM_EXIT_USAGE;
		goto out_mem;
	}
	if (setup_signals()) {
		log_error("cannot set up signal handling");
		status = VMM_EXIT_ERROR;
		goto out_mem;
	}
	if (vm_open_kvm(&vm)) {
		status = VMM_EXIT_ERROR;
		goto out_vm;
	}
	if (vm_check_config(&vm, &cfg)) {
		status = VMM_EXIT_USAGE;
		goto out_vm;
	}
	if (vm_create(&vm, &cfg, &mem, &boot, &serial)) {
		status = vm.bad_config ? VMM_EXIT_USAGE : VMM_EXIT_ERROR;
		goto out_vm;
	}
	/* Guest memory as the boot finds it (on arm64 the device tree, written by vm_create, too). */
	if (config_restarts(&cfg)) {
		if (boot_keep(&mem, &boot, &boot_image)) {
			log_error("cannot keep the boot images for --on-reboot/--on-panic restart: out "
				  "of memory");
			status = VMM_EXIT_ERROR;
			goto out_vm;
		}
		vm.boot_image = &boot_image;
	}
	if (cfg.api_socket && (ret = api_open(&api, cfg.api_socket, &cfg, &vm_api_ops, &vm))) {
		status = ret == -ENOMEM || ret == -EIO ? VMM_EXIT_ERROR : VMM_EXIT_USAGE;
		goto out_vm;
	}
	if (lock_down(&cfg)) {
		status = VMM_EXIT_ERROR;
		goto out_vm;
	}
	if (cfg.api_socket && (ret = api_start(&api))) {
		log_error("api: cannot start its thread: %s", strerror(-ret));
		status = VMM_EXIT_ERROR;
		goto out_vm;
	}
	status = vm_run(&vm, cfg.timeout);
out_vm:
	api_close(&api);
	vm_destroy(&vm);
out_mem:
	close_serial(&cfg, &serial);
	boot_image_free(&boot_image);
	gmem_free(&mem);
	config_free(&cfg);
	return status;
}
