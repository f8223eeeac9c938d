/* The VM: KVM fds, memory slots, irqchip, buses, platform devices, vCPUs, start and stop. */
#ifndef VMM_VM_H
#define VMM_VM_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "bus/bus.h"
#include "memory.h"

struct vm_config;
struct boot_info;
struct vcpu;
struct vm_devices;

struct vm {
	int kvm_fd, vm_fd;
	int run_size; /* mmap size of struct kvm_run */
	unsigned max_vcpus;
	struct kvm_cpuid2 *cpuid; /* KVM_GET_SUPPORTED_CPUID, patched per vCPU */
	struct guest_mem *mem;
	struct bus pio, mmio;
	struct vm_devices *dev;
	unsigned ncpus;
	struct vcpu *vcpus;
	int stop_fd; /* eventfd: written once when the VM should stop */
	atomic_bool stopping;
	int exit_status;
};

/* Opens /dev/kvm and checks the API version and every capability used: 0 or -errno, with a
 * message saying how to fix it. */
int vm_open_kvm(struct vm *vm);
/* Checks the configuration against what KVM reports (vCPU count): 0 or -EINVAL with a message. */
int vm_check_config(struct vm *vm, const struct vm_config *cfg);
/* Creates the VM with its memory, irqchip, platform devices and vCPUs; the UART writes to
 * serial_out (-1: nowhere), which stays the caller's. 0 or -errno. */
int vm_create(struct vm *vm, const struct vm_config *cfg, struct guest_mem *mem,
	      const struct boot_info *boot, int serial_out);
/* Starts the vCPUs, waits for the guest to stop (or the timeout, or a signal), stops everything
 * and returns the exit status. */
int vm_run(struct vm *vm, unsigned timeout_sec);
/* Asks every vCPU to stop; the first caller's status wins. Safe from any thread. */
void vm_request_stop(struct vm *vm, int status);
void vm_destroy(struct vm *vm);

#endif
