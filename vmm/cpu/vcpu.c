#include "cpu/vcpu.h"
#include "arch.h"
#include "devices.h"
#include "log.h"
#include "sandbox.h"
#include "vm.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

int vcpu_create(struct vcpu *c, struct vm *vm, unsigned index, const struct boot_info *boot)
{
	memset(c, 0, sizeof(*c));
	c->vm = vm;
	c->index = index;
	c->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)index);
	if (c->fd < 0) {
		c->fd = -1;
		return -errno;
	}
	c->run = mmap(NULL, (size_t)vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, c->fd, 0);
	if (c->run == MAP_FAILED) {
		c->run = NULL;
		return -errno;
	}
	return arch_vcpu_init(c, boot);
}

static void vcpu_handle_io(struct vcpu *c)
{
	struct kvm_run *run = c->run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	bool out = run->io.direction == KVM_EXIT_IO_OUT;

	/* `rep ins/outs` arrive as count accesses of size bytes each, back to back in the page. */
	for (uint32_t i = 0; i < run->io.count; i++)
		bus_access(&c->vm->pio, run->io.port, data + i * run->io.size, run->io.size, out);
}

static const char *system_event_name(uint32_t type)
{
	switch (type) {
	case KVM_SYSTEM_EVENT_SHUTDOWN:
		return "shutdown";
	case KVM_SYSTEM_EVENT_RESET:
		return "reset";
	default:
		return "unknown";
	}
}

static void vcpu_dump(struct vcpu *c)
{
	arch_vcpu_dump(c, true);
}

/* Returns true while the loop should go on. */
static bool vcpu_handle_exit(struct vcpu *c)
{
	struct kvm_run *run = c->run;

	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		vcpu_handle_io(c);
		return true;
	case KVM_EXIT_MMIO:
		bus_access(&c->vm->mmio, run->mmio.phys_addr, run->mmio.data,
			   run->mmio.len <= sizeof(run->mmio.data) ? run->mmio.len : 0,
			   run->mmio.is_write);
		return true;
	case KVM_EXIT_INTR:
		return true;
	case KVM_EXIT_HLT:
		log_info("vcpu%u: halted", c->index);
		vm_request_stop(c->vm, VMM_EXIT_OK);
		return false;
	case KVM_EXIT_SHUTDOWN:
		/* A triple fault. A PC resets, but a guest that dies this way (early in boot, or a
		 * corrupted kernel) must not look like one that rebooted: its own status, with the
		 * registers. Linux reboots this way only when asked to (reboot=t) or when every
		 * other way failed; vmm's ACPI reset register comes first (docs/usage.md). */
		log_error("vcpu%u: triple fault", c->index);
		vcpu_dump(c);
		vm_request_stop(c->vm, VMM_EXIT_TRIPLE_FAULT);
		return false;
	case KVM_EXIT_SYSTEM_EVENT:
		if (run->system_event.type == KVM_SYSTEM_EVENT_CRASH) {
			log_error("vcpu%u: the guest panicked (KVM's crash event)", c->index);
			vm_request_stop(c->vm, VMM_EXIT_PANIC);
			return false;
		}
		log_info("vcpu%u: system event %s", c->index,
			 system_event_name(run->system_event.type));
		if (run->system_event.type == KVM_SYSTEM_EVENT_RESET) {
			devices_guest_reset(c->vm); /* a restart parks this vCPU at once */
			return true;
		}
		vm_request_stop(c->vm, VMM_EXIT_OK);
		return false;
	case KVM_EXIT_FAIL_ENTRY:
		log_error("vcpu%u: KVM could not enter the guest (hardware reason %#llx)", c->index,
			  (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		vcpu_dump(c);
		break;
	case KVM_EXIT_INTERNAL_ERROR:
		log_error("vcpu%u: KVM internal error, suberror %u", c->index,
			  run->internal.suberror);
		for (uint32_t i = 0; i < run->internal.ndata && i < 16; i++)
			log_error("vcpu%u:   data[%u] %#llx", c->index, i,
				  (unsigned long long)run->internal.data[i]);
		vcpu_dump(c);
		break;
	default:
		log_error("vcpu%u: unexpected exit reason %u", c->index, run->exit_reason);
		break;
	}
	vm_request_stop(c->vm, VMM_EXIT_KVM);
	return false;
}

/* vm.pause: waits until vm_resume or a stop. KVM_KVMCLOCK_CTRL first, so that the guest's
 * watchdogs (soft lockups, RCU stalls) know the time they missed was a pause; it fails with
 * EINVAL where the guest has no kvmclock, which is fine. */
static void vcpu_park(struct vcpu *c)
{
	struct vm *vm = c->vm;

	if (ioctl(c->fd, KVM_KVMCLOCK_CTRL, 0) < 0 && errno != EINVAL)
		log_debug("vcpu%u: KVM_KVMCLOCK_CTRL: %s", c->index, strerror(errno));
	pthread_mutex_lock(&vm->run_lock);
	vm->parked++;
	pthread_cond_broadcast(&vm->run_cond);
	while (atomic_load(&vm->pause) && !atomic_load(&vm->stopping))
		pthread_cond_wait(&vm->run_cond, &vm->run_lock);
	vm->parked--;
	pthread_mutex_unlock(&vm->run_lock);
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *c = arg;
	sigset_t set;
	char name[16];

	snprintf(name, sizeof(name), "vcpu%u", c->index);
	pthread_setname_np(pthread_self(), name); /* itself: a prctl, where /proc may be shut */
	sandbox_enter(SANDBOX_VCPU, name);
	/* Only SIGUSR1 (the kick) reaches vCPU threads; its handler does nothing but interrupt
	 * KVM_RUN. Everything else is for the main thread. */
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);

	while (!atomic_load(&c->vm->stopping)) {
		if (__atomic_exchange_n(&c->report, false, __ATOMIC_SEQ_CST)) {
			arch_vcpu_dump(c, false);
			c->reported = true;
			arch_vcpu_timeout(c);
		}
		if (ioctl(c->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				/* A kick that was not a stop: a pause, or vcpu_report. The flags
				 * are read again after this store, so a stop's or a pause's own
				 * kick is never lost (each sets its flag before immediate_exit). */
				__atomic_store_n(&c->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
				if (atomic_load(&c->vm->pause))
					vcpu_park(c);
				continue;
			}
			log_error("vcpu%u: KVM_RUN: %s", c->index, strerror(errno));
			vm_request_stop(c->vm, VMM_EXIT_KVM);
			break;
		}
		if (!vcpu_handle_exit(c))
			break;
	}
	/* Where a guest that ran out of time was: halted, or busy somewhere. */
	if (__atomic_load_n(&c->vm->exit_status, __ATOMIC_ACQUIRE) == VMM_EXIT_TIMEOUT &&
	    !c->reported)
		arch_vcpu_dump(c, false);
	return NULL;
}

int vcpu_start(struct vcpu *c)
{
	int ret = pthread_create(&c->thread, NULL, vcpu_thread, c);

	if (ret)
		return -ret;
	c->started = true;
	return 0;
}

void vcpu_kick(struct vcpu *c)
{
	/* immediate_exit covers the window before the thread enters KVM_RUN; the signal covers a
	 * thread already inside it. */
	if (c->run)
		__atomic_store_n(&c->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	if (c->started)
		pthread_kill(c->thread, SIGUSR1);
}

void vcpu_report(struct vcpu *c)
{
	__atomic_store_n(&c->report, true, __ATOMIC_SEQ_CST);
	vcpu_kick(c);
}

void vcpu_join(struct vcpu *c)
{
	if (c->started)
		pthread_join(c->thread, NULL);
	c->started = false;
}

void vcpu_destroy(struct vcpu *c)
{
	free(c->initial);
	c->initial = NULL;
	if (c->run)
		munmap(c->run, (size_t)c->vm->run_size);
	if (c->fd >= 0)
		close(c->fd);
	c->run = NULL;
	c->fd = -1;
}
