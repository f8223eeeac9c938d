/* CPUID topology: what each vCPU is told about itself and its siblings; finding a leaf. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "arch/x86/cpu.h"

static struct kvm_cpuid2 *make_cpuid(void)
{
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + 6 * sizeof(c->entries[0]));

	assert_non_null(c);
	c->nent = 6;
	c->entries[0] = (struct kvm_cpuid_entry2){ .function = 1, .ebx = 0x00000800 };
	c->entries[1] = (struct kvm_cpuid_entry2){
		.function = 0xb, .index = 0, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX
	};
	c->entries[2] = (struct kvm_cpuid_entry2){
		.function = 0xb, .index = 1, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX
	};
	c->entries[3] = (struct kvm_cpuid_entry2){
		.function = 0xb, .index = 2, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX
	};
	c->entries[4] = (struct kvm_cpuid_entry2){ .function = 4, .eax = 0xfc004121 };
	c->entries[5] = (struct kvm_cpuid_entry2){ .function = 0x80000008, .ecx = 0x0000f0ff };
	return c;
}

static void leaf1_names_the_apic_and_count(void **state)
{
	struct kvm_cpuid2 *c = make_cpuid();

	cpuid_set_topology(c, 3, 4);
	assert_int_equal(c->entries[0].ebx >> 24, 3);
	assert_int_equal((c->entries[0].ebx >> 16) & 0xff, 4);
	assert_int_equal(c->entries[0].ebx & 0xffff, 0x0800); /* CLFLUSH size kept */
	assert_true(c->entries[0].ecx & (1U << 31));
	assert_true(c->entries[0].edx & (1U << 28));
	cpuid_set_topology(c, 0, 1);
	assert_false(c->entries[0].edx & (1U << 28));
	free(c);
}

static void leaf_b_levels(void **state)
{
	struct kvm_cpuid2 *c = make_cpuid();

	cpuid_set_topology(c, 2, 3);
	assert_int_equal(c->entries[1].ebx, 1);		  /* one thread per core */
	assert_int_equal((c->entries[1].ecx >> 8) & 0xff, 1); /* SMT level */
	assert_int_equal(c->entries[2].eax, 2);		  /* 3 cores need 2 bits of APIC ID */
	assert_int_equal(c->entries[2].ebx, 3);
	assert_int_equal((c->entries[2].ecx >> 8) & 0xff, 2); /* core level */
	assert_int_equal(c->entries[3].ecx, 2);		  /* invalid level, subleaf echoed */
	for (int i = 1; i <= 3; i++)
		assert_int_equal(c->entries[i].edx, 2);
	free(c);
}

static void cache_and_amd_core_counts(void **state)
{
	struct kvm_cpuid2 *c = make_cpuid();

	cpuid_set_topology(c, 0, 2);
	assert_int_equal(c->entries[4].eax >> 26, 1);
	assert_int_equal(c->entries[4].eax & 0x3fff, 0x0121);
	assert_int_equal(c->entries[5].ecx & 0xff, 1);
	assert_int_equal((c->entries[5].ecx >> 12) & 0xf, 1);
	free(c);
}

/* Subleaves count only where KVM says they do. */
static void find_leaf(void **state)
{
	struct kvm_cpuid2 *c = make_cpuid();

	assert_ptr_equal(cpuid_find(c, 1, 0), &c->entries[0]);
	assert_ptr_equal(cpuid_find(c, 1, 5), &c->entries[0]);
	assert_ptr_equal(cpuid_find(c, 0xb, 2), &c->entries[3]);
	assert_null(cpuid_find(c, 0xb, 3));
	assert_null(cpuid_find(c, 7, 0));
	free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(leaf1_names_the_apic_and_count),
		cmocka_unit_test(leaf_b_levels),
		cmocka_unit_test(cache_and_amd_core_counts),
		cmocka_unit_test(find_leaf),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
