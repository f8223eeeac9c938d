/* The VM: KVM fds, memory slots, irqchip, buses, platform devices, vCPUs, start and stop. */
#ifndef VMM_VM_H
#define VMM_VM_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "arch.h"
#include "bus/bus.h"
#include "memory.h"

struct vm_config;
struct boot_info;

/* vmm's exit statuses (the table is in docs/usage.md). The exit device's N is the guest's own
 * choice and may be any of these. */
enum vmm_exit {
	VMM_EXIT_OK = 0,            /* the guest powered off or reset (--on-reboot exit) */
	VMM_EXIT_ERROR = 1,         /* vmm failed: a host error */
	VMM_EXIT_USAGE = 2,         /* bad input: an option, a config file, a backend's file */
	VMM_EXIT_PANIC = 120,       /* the guest panicked (pvpanic, or KVM's crash event) */
	VMM_EXIT_TRIPLE_FAULT = 121, /* a vCPU triple-faulted (KVM_EXIT_SHUTDOWN) */
	VMM_EXIT_KVM = 122,         /* KVM failed: entry failure, internal error, unknown exit */
	VMM_EXIT_QUIT = 123,        /* Ctrl-A x on the terminal */
	VMM_EXIT_TIMEOUT = 124,     /* --timeout, as timeout(1) */
	VMM_EXIT_SIGNAL = 128,      /* + the signal's number; 143 for SIGTERM and vm.shutdown */
};
struct vcpu;
struct vm_devices;
struct serial_host;

struct vm {
	int kvm_fd, vm_fd;
	int run_size; /* mmap size of struct kvm_run */
	unsigned max_vcpus;
	struct guest_mem *mem;
	struct bus pio, mmio;
	struct vm_devices *dev;
	unsigned ncpus;
	struct vcpu *vcpus;
	int stop_fd;  /* eventfd: written once when the VM should stop */
	int pause_fd; /* eventfd: main pauses or restarts the VM, as asked on a vCPU */
	atomic_bool restart; /* ... restarts it (vm_request_restart) */
	struct boot_image *boot_image; /* what a restart loads again; NULL: no restarts */
	struct arch_vm arch;           /* the architecture's own (arch.h) */
	pthread_mutex_t gsi_lock; /* guards the routing table below */
	struct kvm_irq_routing *routes; /* the IOAPIC/PIC pins plus one MSI route per vector */
	uint32_t next_gsi;              /* MSI GSIs are handed out from VM_MSI_GSI_BASE up */
	bool msi_devid;                 /* MSI routes carry the requester ID (arch_vm_init) */
	atomic_bool stopping;
	/* vm.pause: the vCPUs park on run_cond at their next return from KVM_RUN. */
	pthread_mutex_t pause_lock; /* one vm_pause or vm_resume at a time (api, main) */
	pthread_mutex_t run_lock;   /* guards the three below */
	pthread_cond_t run_cond;
	atomic_bool pause;
	unsigned parked;           /* vCPUs parked */
	bool paused;               /* vm_pause done, vm_resume not yet */
	bool clock_saved; /* arch_clock_save kept the guest's clock at the pause */
	atomic_bool timed_out; /* --timeout expired: the exit status is 124 whatever happens next */
	bool bad_config; /* vm_create failed because of the configuration (a backend's path) */
	int exit_status;
};

/* Opens /dev/kvm and checks the API version and every capability used: 0 or -errno, with a
 * message saying how to fix it. */
int vm_open_kvm(struct vm *vm);
/* Checks the configuration against what KVM reports (vCPU count): 0 or -EINVAL with a message. */
int vm_check_config(struct vm *vm, const struct vm_config *cfg);
/* Creates the VM with its memory, irqchip, devices and vCPUs; the UART's host side is serial's
 * descriptors, which stay the caller's. 0 or -errno; vm->bad_config says whether the
 * configuration was at fault (a device backend's file or socket), which main reports as exit 2. */
int vm_create(struct vm *vm, const struct vm_config *cfg, struct guest_mem *mem,
	      const struct boot_info *boot, const struct serial_host *serial);
/* Starts the vCPUs, waits for the guest to stop (or the timeout, or a signal), stops everything
 * and returns the exit status. */
int vm_run(struct vm *vm, unsigned timeout_sec);
/* Asks every vCPU to stop; the first caller's status wins. Safe from any thread. */
void vm_request_stop(struct vm *vm, int status);
/* vm.pause: parks every vCPU and then the devices' threads, and saves the guest's clock so
 * that no time passes for the guest (as QEMU and Cloud Hypervisor do). 0 once all are parked;
 * -EBUSY when already paused, -ESHUTDOWN when the VM is stopping. From one thread (the API's). */
int vm_pause(struct vm *vm);
/* vm.resume: the clock as it was, then the devices' threads, then the vCPUs. -EBUSY unless
 * paused. */
int vm_resume(struct vm *vm);
bool vm_paused(struct vm *vm);
/* From any thread, a vCPU's included: main pauses the VM as soon as it can. */
void vm_request_pause(struct vm *vm);
/* The guest reset (--on-reboot restart, --on-panic restart, vm.reboot): every vCPU stops at once
 * (the one asking too, before it runs another guest instruction), then main resets the devices,
 * loads the boot images again into cleared RAM and starts the vCPUs from their initial state.
 * Needs vm->boot_image. Any thread. */
void vm_request_restart(struct vm *vm);
void vm_destroy(struct vm *vm);

/* KVM's fast paths for devices (unit tests link a fake of these). All return 0 or -errno. */
#define VM_MSI_GSI_BASE  ARCH_IRQ_PINS /* below: the interrupt controller's pins */
#define VM_MSI_GSI_LIMIT 1024

/* A guest write of `len` bytes at addr (port I/O when pio) signals fd instead of exiting;
 * with datamatch only when the value equals *datamatch. assign false removes the binding. */
int vm_ioeventfd(struct vm *vm, uint64_t addr, uint32_t len, bool pio, const uint64_t *datamatch,
		 int fd, bool assign);
/* A write to fd raises gsi. With resample_fd >= 0 the line is level-triggered: it stays asserted
 * until the guest's EOI, which then signals resample_fd. assign false removes it. */
int vm_irqfd(struct vm *vm, uint32_t gsi, int fd, int resample_fd, bool assign);
/* MSI routes: a GSI whose irqfd sends the message (addr, data). vm_msi_alloc reserves a GSI
 * with a route that delivers nothing until vm_msi_set gives it a message. devid is the sender's
 * PCI requester ID, which an interrupt translation service (arm64's ITS: vm->msi_devid) needs. */
int vm_msi_alloc(struct vm *vm, uint32_t *gsi);
int vm_msi_set(struct vm *vm, uint32_t gsi, uint64_t addr, uint32_t data, uint32_t devid);
void vm_msi_free(struct vm *vm, uint32_t gsi);

#endif
