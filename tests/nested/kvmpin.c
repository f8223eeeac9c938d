/*
 * kvmpin: hold one KVM vCPU whose local APIC is software-disabled, and never run it. It makes the
 * vCPU, then leaves a child holding it and exits 0 (1 with a message if it could not): the nested
 * harness's guest (tests/nested/run.sh) runs it before CMD.
 *
 * Why: KVM counts the vCPUs whose local APIC is software-disabled in a static key
 * (apic_sw_disabled in arch/x86/kvm/lapic.c). Every vCPU starts so (the count goes up); a guest
 * that enables its APIC, or a VM that ends, brings it down again, a second later. Each time the
 * count leaves or reaches zero, the kernel rewrites its code where the key is tested, which it
 * does with int3 breakpoints and IPIs to the other CPUs (text_poke_bp). Under QEMU's TCG that
 * patching now and then stops the whole nested guest for good, both CPUs in exc_int3 or spinning
 * on a lock with its clock stopped: in a loop of firmware boots (one VM made and ended each),
 * after 200-odd boots. With this vCPU held, the count never reaches zero, so the code is patched
 * once, at start, and not at each test VM.
 */
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <unistd.h>

int main(void)
{
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	int vm = kvm < 0 ? -1 : ioctl(kvm, KVM_CREATE_VM, 0);

	/* The in-kernel irqchip first: without it the vCPU has no local APIC to count. */
	if (vm < 0 || ioctl(vm, KVM_CREATE_IRQCHIP, 0) < 0 || ioctl(vm, KVM_CREATE_VCPU, 0) < 0) {
		perror("kvmpin");
		return 1;
	}
	if (fork() != 0) /* the parent's status says the vCPU is made; the child keeps it */
		return 0;
	for (;;)
		pause();
}
