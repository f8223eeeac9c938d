#include "vm.h"
#include "arch.h"
#include "config.h"
#include "cpu/vcpu.h"
#include "devices.h"
#include "log.h"
#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

/* What every architecture's KVM must have; arch_caps adds its own. */
static const struct vm_cap required_caps[] = {
	{ KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY" },
	{ KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP" },
	{ KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT" },
	{ KVM_CAP_IOEVENTFD, "KVM_CAP_IOEVENTFD" },
	{ KVM_CAP_IRQFD, "KVM_CAP_IRQFD" },
	{ KVM_CAP_IRQFD_RESAMPLE, "KVM_CAP_IRQFD_RESAMPLE" },
	{ KVM_CAP_IRQ_ROUTING, "KVM_CAP_IRQ_ROUTING" },
};


int vm_open_kvm(struct vm *vm)
{
	const char *path = "/dev/kvm";
	bool missing = false;
	int ret;

	memset(vm, 0, sizeof(*vm));
	vm->vm_fd = vm->stop_fd = vm->pause_fd = -1;
	pthread_mutex_init(&vm->gsi_lock, NULL);
	pthread_mutex_init(&vm->pause_lock, NULL);
	pthread_mutex_init(&vm->run_lock, NULL);
	pthread_cond_init(&vm->run_cond, NULL);
	vm->kvm_fd = open(path, O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0) {
		ret = -errno;
		if (ret == -ENOENT)
			log_error("%s does not exist: KVM is not available on this host. Load the module "
				  "(modprobe kvm_intel or kvm_amd), enable virtualization (VT-x/AMD-V) "
				  "in the firmware, or, inside a VM, enable nested virtualization",
				  path);
		else if (ret == -EACCES || ret == -EPERM)
			log_error("%s: permission denied: add yourself to its group (usually 'kvm': "
				  "sudo usermod -aG kvm $USER, then log in again) or run as root",
				  path);
		else
			log_error("%s: %s", path, strerror(-ret));
		return ret;
	}
	ret = ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0);
	if (ret != KVM_API_VERSION) {
		log_error("%s: KVM API version %d, vmm needs %d", path, ret, KVM_API_VERSION);
		return -ENOTSUP;
	}
	for (size_t i = 0; i < sizeof(required_caps) / sizeof(required_caps[0]) + arch_nr_caps; i++) {
		const struct vm_cap *c = i < sizeof(required_caps) / sizeof(required_caps[0])
						 ? &required_caps[i]
						 : &arch_caps[i - sizeof(required_caps) / sizeof(required_caps[0])];

		if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, c->cap) <= 0) {
			log_error("%s: this KVM lacks %s, which vmm needs", path, c->name);
			missing = true;
		}
	}
	if (missing)
		return -ENOTSUP;
	vm->run_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (vm->run_size < (int)sizeof(struct kvm_run)) {
		log_error("%s: KVM_GET_VCPU_MMAP_SIZE: %s", path, strerror(errno));
		return -ENOTSUP;
	}
	ret = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	if (ret <= 0)
		ret = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
	vm->max_vcpus = ret > 0 ? (unsigned)ret : 4; /* the API's documented fallback */
	return 0;
}

int vm_check_config(struct vm *vm, const struct vm_config *cfg)
{
	if (cfg->cpus > vm->max_vcpus) {
		log_error("--cpus %u: this host's KVM supports at most %u vCPUs", cfg->cpus,
			  vm->max_vcpus);
		return -EINVAL;
	}
	return 0;
}

static void vm_irq_set(void *opaque, uint32_t gsi, int level)
{
	struct vm *vm = opaque;
	struct kvm_irq_level irq = { .irq = arch_irq_line(gsi), .level = (uint32_t)level };

	if (ioctl(vm->vm_fd, KVM_IRQ_LINE, &irq) < 0)
		log_warn("KVM_IRQ_LINE gsi %u: %s", gsi, strerror(errno));
}

#define KVM_TRY(call, what)                                                                        \
	do {                                                                                       \
		if ((call) < 0) {                                                                  \
			ret = -errno;                                                              \
			log_error("%s: %s", what, strerror(errno));                                \
			return ret;                                                                \
		}                                                                                  \
	} while (0)

int vm_create(struct vm *vm, const struct vm_config *cfg, struct guest_mem *mem,
	      const struct boot_info *boot, const struct serial_host *serial)
{
	int ret;

	vm->mem = mem;
	vm->ncpus = cfg->cpus;
	bus_init(&vm->pio, "pio");
	bus_init(&vm->mmio, "mmio");
	vm->stop_fd = eventfd(0, EFD_CLOEXEC);
	KVM_TRY(vm->stop_fd, "eventfd");
	vm->pause_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	KVM_TRY(vm->pause_fd, "eventfd");
	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	KVM_TRY(vm->vm_fd, "KVM_CREATE_VM");
	if ((ret = arch_vm_init(vm)))
		return ret;
	for (int i = 0; i < mem->nr; i++) {
		struct kvm_userspace_memory_region region = {
			.slot = (uint32_t)i,
			.guest_phys_addr = mem->r[i].gpa,
			.memory_size = mem->r[i].size,
			.userspace_addr = (uintptr_t)mem->r[i].host,
		};
		KVM_TRY(ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &region),
			"KVM_SET_USER_MEMORY_REGION");
	}
	vm->vcpus = calloc(cfg->cpus, sizeof(*vm->vcpus));
	if (!vm->vcpus)
		return -ENOMEM;
	for (unsigned i = 0; i < cfg->cpus; i++) {
		vm->vcpus[i].fd = -1;
		if ((ret = vcpu_create(&vm->vcpus[i], vm, i, boot)) ||
		    (config_restarts(cfg) && (ret = arch_vcpu_keep(&vm->vcpus[i])))) {
			log_error("vcpu%u: setup failed: %s", i, strerror(-ret));
			return ret;
		}
	}
	/* The devices last: on arm64 KVM takes interrupt eventfds only once the GIC is initialised,
	 * which is after the vCPUs (arch_vm_finish). */
	if ((ret = arch_vm_finish(vm, cfg, boot)))
		return ret;
	return devices_create(vm, cfg, (struct irq_line){ vm_irq_set, vm, 0 }, serial);
}

int vm_ioeventfd(struct vm *vm, uint64_t addr, uint32_t len, bool pio, const uint64_t *datamatch,
		 int fd, bool assign)
{
	struct kvm_ioeventfd io;

	if (pio && ARCH_PIO_WINDOW) { /* the port is an address in the window, for the CPU */
		addr += ARCH_PIO_WINDOW;
		pio = false;
	}
	io = (struct kvm_ioeventfd){
		.addr = addr,
		.len = len,
		.fd = fd,
		.datamatch = datamatch ? *datamatch : 0,
		.flags = (pio ? KVM_IOEVENTFD_FLAG_PIO : 0) |
			 (datamatch ? KVM_IOEVENTFD_FLAG_DATAMATCH : 0) |
			 (assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN),
	};

	return ioctl(vm->vm_fd, KVM_IOEVENTFD, &io) < 0 ? -errno : 0;
}

int vm_irqfd(struct vm *vm, uint32_t gsi, int fd, int resample_fd, bool assign)
{
	struct kvm_irqfd irq = { .fd = (uint32_t)fd, .gsi = gsi };

	if (!assign)
		irq.flags = KVM_IRQFD_FLAG_DEASSIGN;
	else if (resample_fd >= 0) {
		irq.flags = KVM_IRQFD_FLAG_RESAMPLE;
		irq.resamplefd = (uint32_t)resample_fd;
	}
	return ioctl(vm->vm_fd, KVM_IRQFD, &irq) < 0 ? -errno : 0;
}

/* KVM_SET_GSI_ROUTING replaces the whole table, so the table always holds the default
 * irqchip routes (arch_irq_routes) and then the MSIs. */
static int vm_routes_init(struct vm *vm)
{
	unsigned max = ARCH_IRQ_ROUTES + VM_MSI_GSI_LIMIT;
	struct kvm_irq_routing *r = calloc(1, sizeof(*r) + max * sizeof(r->entries[0]));

	if (!r)
		return -ENOMEM;
	r->nr = arch_irq_routes(r->entries);
	vm->routes = r;
	vm->next_gsi = VM_MSI_GSI_BASE;
	return 0;
}

static struct kvm_irq_routing_entry *vm_route(struct vm *vm, uint32_t gsi)
{
	for (uint32_t i = 0; vm->routes && i < vm->routes->nr; i++)
		if (vm->routes->entries[i].gsi == gsi)
			return &vm->routes->entries[i];
	return NULL;
}

int vm_msi_alloc(struct vm *vm, uint32_t *gsi)
{
	int ret = 0;

	pthread_mutex_lock(&vm->gsi_lock);
	if (!vm->routes && (ret = vm_routes_init(vm)))
		goto out;
	if (vm->next_gsi >= VM_MSI_GSI_BASE + VM_MSI_GSI_LIMIT) {
		ret = -ENOSPC;
		goto out;
	}
	*gsi = vm->next_gsi++;
out:
	pthread_mutex_unlock(&vm->gsi_lock);
	return ret;
}

int vm_msi_set(struct vm *vm, uint32_t gsi, uint64_t addr, uint32_t data, uint32_t devid)
{
	struct kvm_irq_routing_entry *e;
	int ret = 0;

	pthread_mutex_lock(&vm->gsi_lock);
	if (!vm->routes || gsi < VM_MSI_GSI_BASE || gsi >= vm->next_gsi) {
		ret = -EINVAL;
		goto out;
	}
	if (!(e = vm_route(vm, gsi)))
		e = &vm->routes->entries[vm->routes->nr++];
	*e = (struct kvm_irq_routing_entry){
		.gsi = gsi, .type = KVM_IRQ_ROUTING_MSI,
		.flags = vm->msi_devid ? KVM_MSI_VALID_DEVID : 0,
		.u.msi = { .address_lo = (uint32_t)addr, .address_hi = (uint32_t)(addr >> 32),
			   .data = data, .devid = vm->msi_devid ? devid : 0 }
	};
	if (ioctl(vm->vm_fd, KVM_SET_GSI_ROUTING, vm->routes) < 0)
		ret = -errno;
out:
	pthread_mutex_unlock(&vm->gsi_lock);
	return ret;
}

void vm_msi_free(struct vm *vm, uint32_t gsi)
{
	struct kvm_irq_routing_entry *e;

	pthread_mutex_lock(&vm->gsi_lock);
	if ((e = vm_route(vm, gsi)) && gsi >= VM_MSI_GSI_BASE) {
		*e = vm->routes->entries[--vm->routes->nr];
		if (ioctl(vm->vm_fd, KVM_SET_GSI_ROUTING, vm->routes) < 0)
			log_debug("KVM_SET_GSI_ROUTING: %s", strerror(errno));
	}
	pthread_mutex_unlock(&vm->gsi_lock);
}

void vm_request_stop(struct vm *vm, int status)
{
	uint64_t one = 1;

	if (atomic_exchange(&vm->stopping, true))
		return;
	/* A guest that panics or powers off after its time ran out has still run out of time. */
	if (atomic_load(&vm->timed_out))
		status = VMM_EXIT_TIMEOUT;
	__atomic_store_n(&vm->exit_status, status, __ATOMIC_RELEASE);
	pthread_mutex_lock(&vm->run_lock); /* parked vCPUs, and a vm_pause waiting for them */
	pthread_cond_broadcast(&vm->run_cond);
	pthread_mutex_unlock(&vm->run_lock);
	for (unsigned i = 0; i < vm->ncpus && vm->vcpus; i++)
		vcpu_kick(&vm->vcpus[i]);
	if (write(vm->stop_fd, &one, sizeof(one)) < 0)
		log_warn("stop eventfd: %s", strerror(errno));
}

static void kick_all(struct vm *vm)
{
	for (unsigned i = 0; i < vm->ncpus; i++)
		vcpu_kick(&vm->vcpus[i]);
}

void vm_request_pause(struct vm *vm)
{
	uint64_t one = 1;

	if (write(vm->pause_fd, &one, sizeof(one)) < 0)
		log_warn("pause eventfd: %s", strerror(errno));
}

/* Sets the pause flag (if not set already) and waits until every vCPU has parked. 0, or
 * -ESHUTDOWN when the VM stops meanwhile. */
static int park_vcpus(struct vm *vm)
{
	struct timespec ts;

	atomic_store(&vm->pause, true);
	kick_all(vm);
	/* Each vCPU parks as its KVM_RUN returns to the kick. The kick is not lost (see the vCPU
	 * loop), but it costs nothing to repeat while waiting. */
	pthread_mutex_lock(&vm->run_lock);
	while (vm->parked < vm->ncpus && !atomic_load(&vm->stopping)) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 100 * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		if (pthread_cond_timedwait(&vm->run_cond, &vm->run_lock, &ts) == ETIMEDOUT) {
			pthread_mutex_unlock(&vm->run_lock);
			kick_all(vm);
			pthread_mutex_lock(&vm->run_lock);
		}
	}
	pthread_mutex_unlock(&vm->run_lock);
	return atomic_load(&vm->stopping) ? -ESHUTDOWN : 0;
}

/* Lets the parked vCPUs go. */
static void unpark_vcpus(struct vm *vm)
{
	pthread_mutex_lock(&vm->run_lock);
	atomic_store(&vm->pause, false);
	pthread_cond_broadcast(&vm->run_cond);
	pthread_mutex_unlock(&vm->run_lock);
}

static int pause_locked(struct vm *vm)
{
	if (vm_paused(vm))
		return -EBUSY;
	if (atomic_load(&vm->stopping) || park_vcpus(vm))
		return -ESHUTDOWN;
	pthread_mutex_lock(&vm->run_lock);
	vm->paused = true;
	pthread_mutex_unlock(&vm->run_lock);
	devices_pause(vm);
	/* The guest's clock stops here: resume sets it back to this value. */
	vm->clock_saved = arch_clock_save(vm) == 0;
	log_info("vm.pause: the guest is paused");
	return 0;
}

void vm_request_restart(struct vm *vm)
{
	atomic_store(&vm->restart, true);
	atomic_store(&vm->pause, true); /* before the kick: the asking vCPU parks too */
	kick_all(vm);
	vm_request_pause(vm);
}

/* On main: the restart vm_request_restart asked for. The devices are reset while their threads
 * run, through the same path as a driver's reset (which waits for what is in flight), and only
 * then is RAM cleared and reloaded, so nothing of the old boot writes into the new one. */
static void vm_restart(struct vm *vm)
{
	pthread_mutex_lock(&vm->pause_lock);
	if (vm_paused(vm)) { /* vm.pause got there first: the vCPUs wait for vm.resume */
		log_warn("restart: the VM is paused; it restarts when resumed");
		atomic_store(&vm->restart, true);
		pthread_mutex_unlock(&vm->pause_lock);
		return;
	}
	if (park_vcpus(vm)) {
		pthread_mutex_unlock(&vm->pause_lock);
		return;
	}
	log_info("restart: resetting the devices, reloading the kernel");
	devices_reset(vm);
	boot_reload(vm->mem, vm->boot_image);
	arch_vm_reset(vm);
	for (unsigned i = 0; i < vm->ncpus; i++)
		if (arch_vcpu_reset(&vm->vcpus[i]))
			vm_request_stop(vm, VMM_EXIT_KVM);
	unpark_vcpus(vm);
	pthread_mutex_unlock(&vm->pause_lock);
}

int vm_pause(struct vm *vm)
{
	int ret;

	pthread_mutex_lock(&vm->pause_lock);
	ret = pause_locked(vm);
	pthread_mutex_unlock(&vm->pause_lock);
	return ret;
}

static int resume_locked(struct vm *vm)
{
	pthread_mutex_lock(&vm->run_lock);
	if (!vm->paused) {
		pthread_mutex_unlock(&vm->run_lock);
		return -EBUSY;
	}
	pthread_mutex_unlock(&vm->run_lock);
	if (vm->clock_saved)
		arch_clock_restore(vm);
	devices_resume(vm);
	pthread_mutex_lock(&vm->run_lock);
	vm->paused = false;
	pthread_mutex_unlock(&vm->run_lock);
	if (atomic_load(&vm->restart)) { /* a restart that found the VM paused: now */
		vm_request_pause(vm);
		log_info("vm.resume: the guest restarts");
		return 0;
	}
	unpark_vcpus(vm);
	log_info("vm.resume: the guest runs");
	return 0;
}

int vm_resume(struct vm *vm)
{
	int ret;

	pthread_mutex_lock(&vm->pause_lock);
	ret = resume_locked(vm);
	pthread_mutex_unlock(&vm->pause_lock);
	return ret;
}

bool vm_paused(struct vm *vm)
{
	bool paused;

	pthread_mutex_lock(&vm->run_lock);
	paused = vm->paused;
	pthread_mutex_unlock(&vm->run_lock);
	return paused;
}

/* After --timeout: how long a guest sent an NMI has to report before it is stopped. */
#define VM_TIMEOUT_REPORT_MS 3000

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int vm_run(struct vm *vm, unsigned timeout_sec)
{
	int64_t deadline = timeout_sec ? now_ms() + (int64_t)timeout_sec * 1000 : 0;
	sigset_t sigs;
	int sfd, ret;

	/* The main thread owns the process signals; it learns about them through a signalfd. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGWINCH);
	sfd = signalfd(-1, &sigs, SFD_CLOEXEC);
	if (sfd < 0) {
		log_error("signalfd: %s", strerror(errno));
		return VMM_EXIT_ERROR;
	}
	if ((ret = devices_start(vm)) < 0) {
		log_error("starting devices: %s", strerror(-ret));
		vm_request_stop(vm, VMM_EXIT_ERROR);
	}
	for (unsigned i = 0; i < vm->ncpus && !atomic_load(&vm->stopping); i++) {
		if ((ret = vcpu_start(&vm->vcpus[i]))) {
			log_error("vcpu%u: cannot start thread: %s", i, strerror(-ret));
			vm_request_stop(vm, VMM_EXIT_ERROR);
		}
	}
	sandbox_enter(SANDBOX_MAIN, "main"); /* the others have theirs */
	while (!atomic_load(&vm->stopping)) {
		struct pollfd pfd[3] = { { vm->stop_fd, POLLIN, 0 },
					 { sfd, POLLIN, 0 },
					 { vm->pause_fd, POLLIN, 0 } };
		int wait = -1;

		if (deadline) {
			int64_t left = deadline - now_ms();
			if (left <= 0 && !atomic_load(&vm->timed_out)) {
				/* What the guest was waiting for: the devices' queues and each vCPU
				 * now, then an NMI that lets a Linux guest say where it is (with
				 * unknown_nmi_panic) in the VM_TIMEOUT_REPORT_MS it is given:
				 * whole, its panic does not end it (devices_platform_event). */
				log_info("--timeout %u expired", timeout_sec);
				atomic_store(&vm->timed_out, true);
				devices_log_state(vm);
				for (unsigned i = 0; i < vm->ncpus; i++)
					vcpu_report(&vm->vcpus[i]);
				deadline = now_ms() + VM_TIMEOUT_REPORT_MS;
				continue;
			}
			if (left <= 0) {
				vm_request_stop(vm, VMM_EXIT_TIMEOUT);
				break;
			}
			wait = left > 60000 ? 60000 : (int)left;
		}
		if (poll(pfd, 3, wait) < 0 && errno != EINTR) {
			log_error("poll: %s", strerror(errno));
			vm_request_stop(vm, VMM_EXIT_ERROR);
		}
		uint64_t v;
		if ((pfd[2].revents & POLLIN) && read(vm->pause_fd, &v, sizeof(v)) == sizeof(v)) {
			if (atomic_exchange(&vm->restart, false))
				vm_restart(vm);
			else
				vm_pause(vm); /* -EBUSY: already paused, from the control socket */
		}
		struct signalfd_siginfo si;
		if (!(pfd[1].revents & POLLIN) || read(sfd, &si, sizeof(si)) != sizeof(si))
			continue;
		if (si.ssi_signo == SIGWINCH) {
			devices_resize(vm); /* the terminal changed size */
		} else {
			log_info("signal %u: stopping the guest", si.ssi_signo);
			vm_request_stop(vm, VMM_EXIT_SIGNAL + (int)si.ssi_signo);
		}
	}
	for (unsigned i = 0; i < vm->ncpus; i++)
		vcpu_join(&vm->vcpus[i]);
	devices_stop(vm);
	close(sfd);
	return vm->exit_status;
}

void vm_destroy(struct vm *vm)
{
	for (unsigned i = 0; vm->vcpus && i < vm->ncpus; i++)
		vcpu_destroy(&vm->vcpus[i]);
	free(vm->vcpus);
	devices_destroy(vm);
	arch_vm_destroy(vm);
	free(vm->routes);
	vm->routes = NULL;
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	if (vm->stop_fd >= 0)
		close(vm->stop_fd);
	if (vm->pause_fd >= 0)
		close(vm->pause_fd);
	if (vm->pio.name)
		bus_destroy(&vm->pio);
	if (vm->mmio.name)
		bus_destroy(&vm->mmio);
	pthread_mutex_destroy(&vm->pause_lock);
	pthread_mutex_destroy(&vm->run_lock);
	pthread_cond_destroy(&vm->run_cond);
	vm->vcpus = NULL;
	vm->vm_fd = vm->kvm_fd = vm->stop_fd = vm->pause_fd = -1;
}
