/* vmm: command line -> config -> guest memory and boot images -> VM -> run -> exit status. */
#include "boot/boot.h"
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
#define EXIT_HOST_FAILURE 1
#define EXIT_BAD_INPUT    2

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

/* Where the UART's output goes: stdout, a file (created or truncated) or nowhere (-1). A console log
 * that cannot be created is bad input, found out before KVM is touched. */
static int open_serial_output(const struct vm_config *cfg, int *fd)
{
	*fd = cfg->serial == SERIAL_STDIO ? STDOUT_FILENO : -1;
	if (cfg->serial != SERIAL_FILE)
		return 0;
	*fd = open(cfg->serial_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (*fd < 0) {
		log_error("%s: %s", cfg->serial_origin, strerror(errno));
		return -1;
	}
	return 0;
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
	if (reboot)
		log_info("api: vm.reboot: the guest is reset, which ends vmm as its own reboot does");
	else
		log_info("api: vm.shutdown: stopping the guest");
	vm_request_stop(opaque, reboot ? 0 : 128 + SIGTERM);
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
 * (the boot images read only, for a reboot to come), and the filters the threads take as they
 * start. */
static int lock_down(const struct vm_config *cfg)
{
	struct sandbox_path paths[5 + cfg->nr_disks + cfg->nr_luns + cfg->nr_ports];
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
	int ret, status, serial_out = -1;

	if (argc > 1 && !strcmp(argv[1], "ctl"))
		return api_client(argc - 2, argv + 2);
	if (config_parse(&cfg, argc, argv)) {
		config_free(&cfg);
		return EXIT_BAD_INPUT;
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
		return EXIT_HOST_FAILURE;
	}
	struct boot_mmio_dev mmio[VIRTIO_MMIO_MAX];
	int nr_mmio = devices_mmio_layout(&cfg, mmio);
	struct boot_args args = {
		.kernel = cfg.kernel, .initrd = cfg.initrd, .kernel_what = cfg.kernel_origin,
		.initrd_what = cfg.initrd_origin, .cmdline = cfg.cmdline, .cpus = cfg.cpus,
		.mmio = mmio, .nr_mmio = nr_mmio > 0 ? (unsigned)nr_mmio : 0,
	};
	if (nr_mmio < 0 || boot_load(&mem, &args, &boot) || open_serial_output(&cfg, &serial_out) ||
	    devices_check(&cfg)) {
		status = EXIT_BAD_INPUT;
		goto out_mem;
	}
	if (setup_signals()) {
		log_error("cannot set up signal handling");
		status = EXIT_HOST_FAILURE;
		goto out_mem;
	}
	if (vm_open_kvm(&vm)) {
		status = EXIT_HOST_FAILURE;
		goto out_vm;
	}
	if (vm_check_config(&vm, &cfg)) {
		status = EXIT_BAD_INPUT;
		goto out_vm;
	}
	if (vm_create(&vm, &cfg, &mem, &boot, serial_out)) {
		status = vm.bad_config ? EXIT_BAD_INPUT : EXIT_HOST_FAILURE;
		goto out_vm;
	}
	if (cfg.api_socket && (ret = api_open(&api, cfg.api_socket, &cfg, &vm_api_ops, &vm))) {
		status = ret == -ENOMEM || ret == -EIO ? EXIT_HOST_FAILURE : EXIT_BAD_INPUT;
		goto out_vm;
	}
	if (lock_down(&cfg)) {
		status = EXIT_HOST_FAILURE;
		goto out_vm;
	}
	if (cfg.api_socket && (ret = api_start(&api))) {
		log_error("api: cannot start its thread: %s", strerror(-ret));
		status = EXIT_HOST_FAILURE;
		goto out_vm;
	}
	status = vm_run(&vm, cfg.timeout);
out_vm:
	api_close(&api);
	vm_destroy(&vm);
out_mem:
	if (cfg.serial == SERIAL_FILE && serial_out >= 0)
		close(serial_out);
	gmem_free(&mem);
	config_free(&cfg);
	return status;
}
