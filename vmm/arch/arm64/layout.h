/* arm64's machine: its memory map, after QEMU's `virt` board where a choice was free (so a guest
 * kernel's expectations and the addresses in a bug report look familiar), and the device tree's
 * SPIs. Everything below RAM_BASE is devices; RAM is one region from 1 GiB up. */
#ifndef VMM_ARM64_LAYOUT_H
#define VMM_ARM64_LAYOUT_H

#include "memory.h"

#define RAM_BASE       0x40000000ULL
#define MEM_HOLE_START UINT64_MAX /* no hole: RAM is one region */
#define MEM_HOLE_END   UINT64_MAX

/* The interrupt controller (GICv3: distributor, ITS, then two 64 KiB frames per vCPU; GICv2:
 * distributor and CPU interface). */
#define GIC_DIST_BASE     0x08000000ULL
#define GIC_DIST_SIZE     0x10000ULL
#define GIC_CPU_BASE      0x08010000ULL /* v2 */
#define GIC_CPU_SIZE      0x10000ULL
#define GIC_ITS_BASE      0x08080000ULL /* v3 */
#define GIC_ITS_SIZE      0x20000ULL
#define GIC_REDIST_BASE   0x080a0000ULL /* v3: 128 KiB per vCPU, up to the UART */
#define GIC_REDIST_SIZE   0x20000ULL
#define GIC_REDIST_MAX    ((0x09000000ULL - GIC_REDIST_BASE) / GIC_REDIST_SIZE) /* 123 vCPUs */

/* GSIs are SPI numbers (the GIC's INTID - 32): KVM's irqfd and the device tree count them so. */
#define UART_MMIO_BASE    0x09000000ULL /* a 16550A, one byte per register */
#define UART_MMIO_SIZE    0x1000ULL
#define UART_GSI          1
#define RTC_BASE          0x09010000ULL /* PL031 */
#define RTC_SIZE          0x1000ULL
#define RTC_GSI           2
#define EXITDEV_MMIO_ADDR 0x09030000ULL /* byte 0 is the exit register, as on x86 */
#define EXITDEV_MMIO_SIZE 0x1000ULL
#define GPIO_BASE         0x09040000ULL /* PL061: the power button is its pin 3 */
#define GPIO_SIZE         0x1000ULL
#define GPIO_GSI          7
#define POWER_BUTTON_PIN  3
#define PVPANIC_BASE      0x09050000ULL /* QEMU's pvpanic-mmio: byte 0 */
#define PVPANIC_SIZE      0x1000ULL

/* PCI: ECAM for bus 0; I/O space through a 64 KiB window of MMIO; a 32-bit memory window. */
#define PCI_MMIO_BASE      0x10000000ULL /* memory BARs, CPU address = bus address */
#define PCI_MMIO_SIZE      0x2eff0000ULL
#define PCI_PIO_WINDOW     0x3eff0000ULL /* port p is MMIO at PCI_PIO_WINDOW + p */
#define PCI_PIO_WINDOW_SIZE 0x10000ULL
#define PCI_IO_BASE        0x1000 /* I/O BARs, in I/O space */
#define PCI_IO_SIZE        0xf000
#define PCI_ECAM_BASE      0x3f000000ULL
#define PCI_ECAM_SIZE      0x100000ULL
#define PCI_CONFIG_PORT    0xcf8 /* nothing reaches it: arm64 has no port I/O but the window */
#define PCI_INTX_GSI_BASE  3 /* INTA-INTD of slot s, pin p: 3 + (s + p) % 4, as the device tree maps */
#define PCI_INTX_GSI(s, p) (PCI_INTX_GSI_BASE + ((s) + (p)) % 4)
#define PCI_SLOTS          32

/* virtio-mmio device n at BASE + n * SIZE, GSI 16 + n. */
#define VIRTIO_MMIO_BASE  0x0a000000ULL
#define VIRTIO_MMIO_SIZE  0x1000ULL
#define VIRTIO_MMIO_GSIS  { 16, 17, 18, 19, 20, 21, 22, 23, 24, 25 }
#define VIRTIO_MMIO_MAX   10

#define NR_SPIS 64 /* SPIs the GIC is given: all of the above fit */

#endif
