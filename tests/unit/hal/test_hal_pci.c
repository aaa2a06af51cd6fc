/*
 * PCI discovery through libpci: a test backend whose ID table names one of this machine's PCI
 * functions (a virtio one when there is one; the IDs are read from sysfs at run time) has its
 * probe called with that function's BDF, and only for matching functions. Skipped on a machine
 * without PCI devices.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <ferry/hal/hal.h>

#define MAXDEV 256

struct sysdev {
	char bdf[16];
	unsigned int vendor, device;
};
static struct sysdev sys[MAXDEV];
static int nsys;

static unsigned int read_hex(const char *bdf, const char *file)
{
	char path[128];
	unsigned int v = 0;
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/%s", bdf, file);
	FILE *f = fopen(path, "r");
	if (f) {
		if (fscanf(f, "%x", &v) != 1)
			v = 0;
		fclose(f);
	}
	return v;
}

static void scan_sysfs(void)
{
	DIR *d = opendir("/sys/bus/pci/devices");
	nsys = 0;
	if (!d)
		return;
	for (struct dirent *e; (e = readdir(d)) && nsys < MAXDEV;) {
		if (e->d_name[0] == '.' || strlen(e->d_name) >= sizeof(sys[0].bdf))
			continue;
		strcpy(sys[nsys].bdf, e->d_name);
		sys[nsys].vendor = read_hex(e->d_name, "vendor");
		sys[nsys].device = read_hex(e->d_name, "device");
		nsys++;
	}
	closedir(d);
}

static char probed_bdf[MAXDEV][16];
static struct ferry_hal_pci_dev probed_dev[MAXDEV];
static int nprobed, decline;

static int t_probe(const struct ferry_hal_backend *b, const struct ferry_hal_pci_dev *pci)
{
	if (nprobed < MAXDEV) {
		strcpy(probed_bdf[nprobed], pci->bdf);
		probed_dev[nprobed] = *pci;
	}
	nprobed++;
	return decline ? -ENODEV : 0;
}
static int t_open(struct ferry_device *dev, const char *args)
{
	return 0;
}
static void t_close(struct ferry_device *dev)
{
}

static struct ferry_hal_pci_id ids[3];
static const struct ferry_hal_backend pcibe = {.abi_version = FERRY_HAL_ABI_VERSION,
					       .name = "pcitest",
					       .pci_ids = ids,
					       .probe = t_probe,
					       .open = t_open,
					       .close = t_close};

static int pick_target(void)
{
	scan_sysfs();
	if (nsys == 0)
		return -1;
	for (int i = 0; i < nsys; i++)
		if (sys[i].vendor == 0x1af4)
			return i;
	return 0;
}

Test(hal_pci, probe_called_for_matching_function)
{
	int t = pick_target();
	if (t < 0)
		cr_skip_test("no PCI devices on this machine");
	ids[0] = (struct ferry_hal_pci_id){(uint16_t)sys[t].vendor, (uint16_t)sys[t].device};
	ids[1] = (struct ferry_hal_pci_id){0, 0};
	int want = 0;
	for (int i = 0; i < nsys; i++)
		want += sys[i].vendor == sys[t].vendor && sys[i].device == sys[t].device;
	cr_assert_eq(ferry_hal_register(&pcibe), 0);
	unsigned int probed = 99;
	int seen = ferry_hal_pci_discover(&probed);
	cr_assert_eq(seen, nsys, "libpci saw %d functions, sysfs lists %d", seen, nsys);
	cr_assert_eq(nprobed, want);
	cr_assert_eq(probed, (unsigned)want);
	int hit = 0;
	for (int i = 0; i < nprobed && i < MAXDEV; i++) {
		cr_assert_eq(probed_dev[i].vendor_id, sys[t].vendor);
		cr_assert_eq(probed_dev[i].device_id, sys[t].device);
		hit += strcmp(probed_bdf[i], sys[t].bdf) == 0;
		char bdf[16];
		snprintf(bdf, sizeof(bdf), "%04x:%02x:%02x.%x", probed_dev[i].domain,
			 probed_dev[i].bus, probed_dev[i].dev, probed_dev[i].func);
		cr_assert_str_eq(bdf, probed_bdf[i], "BDF fields agree with the string");
	}
	cr_assert_eq(hit, 1, "probe saw %s", sys[t].bdf);
	ferry_hal_unregister(&pcibe);
}

Test(hal_pci, any_device_id_and_decline)
{
	int t = pick_target();
	if (t < 0)
		cr_skip_test("no PCI devices on this machine");
	ids[0] = (struct ferry_hal_pci_id){(uint16_t)sys[t].vendor, FERRY_HAL_PCI_ANY_ID};
	ids[1] = (struct ferry_hal_pci_id){0, 0};
	int want = 0;
	for (int i = 0; i < nsys; i++)
		want += sys[i].vendor == sys[t].vendor;
	cr_assert_eq(ferry_hal_register(&pcibe), 0);
	decline = 1;
	unsigned int probed = 99;
	cr_assert_eq(ferry_hal_pci_discover(&probed), nsys);
	cr_assert_eq(nprobed, want, "every function of vendor 0x%04x", sys[t].vendor);
	cr_assert_eq(probed, 0, "declined probes are not counted");
	ferry_hal_unregister(&pcibe);
}

Test(hal_pci, no_match_no_probe)
{
	if (pick_target() < 0)
		cr_skip_test("no PCI devices on this machine");
	ids[0] = (struct ferry_hal_pci_id){0xfffe, 0xfffe}; /* no such vendor */
	ids[1] = (struct ferry_hal_pci_id){0, 0};
	cr_assert_eq(ferry_hal_register(&pcibe), 0);
	cr_assert_eq(ferry_hal_pci_discover(NULL), nsys);
	cr_assert_eq(nprobed, 0);
	ferry_hal_unregister(&pcibe);
}
