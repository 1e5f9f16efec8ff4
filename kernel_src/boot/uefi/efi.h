/*
 * efi.h - the few UEFI types the loader uses, written from the UEFI 2.10
 * specification (section numbers below), nothing else: no vendor header.
 *
 * Tables are declared up to the last member the loader calls; members it
 * does not call are opaque pointers so the offsets stay right. Every
 * firmware call uses the Microsoft x64 convention (UEFI 2.10 2.3.4.2): the
 * loader is compiled for a Windows target, where that is the default, and
 * EFIAPI says so explicitly on each function pointer.
 */
#ifndef HFTOS_EFI_H
#define HFTOS_EFI_H

#include <stdint.h>

#define EFIAPI __attribute__((ms_abi))

typedef uint64_t efi_status;
typedef void *efi_handle;
typedef uint16_t char16;

/* Appendix D: error codes have the high bit set. */
#define EFI_SUCCESS           0
#define EFI_ERROR_BIT         0x8000000000000000ull
#define EFI_LOAD_ERROR        (EFI_ERROR_BIT | 1)
#define EFI_INVALID_PARAMETER (EFI_ERROR_BIT | 2)
#define EFI_BUFFER_TOO_SMALL  (EFI_ERROR_BIT | 5)
#define EFI_NOT_FOUND         (EFI_ERROR_BIT | 14)

/* 4.2 EFI_TABLE_HEADER */
struct efi_table_header {
	uint64_t signature;
	uint32_t revision;
	uint32_t header_size;
	uint32_t crc32;
	uint32_t reserved;
};

/* 12.4 EFI_SIMPLE_TEXT_OUTPUT_PROTOCOL, up to OutputString */
struct efi_text_out {
	void *reset;
	efi_status (EFIAPI *output_string)(struct efi_text_out *self, const char16 *s);
};

/* 7.2 memory allocation: EFI_ALLOCATE_TYPE and EFI_MEMORY_TYPE */
enum { EFI_ALLOCATE_ANY = 0, EFI_ALLOCATE_MAX_ADDRESS = 1, EFI_ALLOCATE_ADDRESS = 2 };
enum {
	EFI_RESERVED_MEMORY = 0, EFI_LOADER_CODE, EFI_LOADER_DATA, EFI_BOOT_SERVICES_CODE,
	EFI_BOOT_SERVICES_DATA, EFI_RUNTIME_SERVICES_CODE, EFI_RUNTIME_SERVICES_DATA,
	EFI_CONVENTIONAL_MEMORY, EFI_UNUSABLE_MEMORY, EFI_ACPI_RECLAIM_MEMORY,
	EFI_ACPI_MEMORY_NVS, EFI_MEMORY_MAPPED_IO, EFI_MEMORY_MAPPED_IO_PORT_SPACE,
	EFI_PAL_CODE, EFI_PERSISTENT_MEMORY,
};
#define EFI_PAGE_SIZE 4096

/* 7.2.3 EFI_MEMORY_DESCRIPTOR; the firmware's stride is DescriptorSize,
 * which may be larger than this struct (OVMF: 48 bytes). */
struct efi_memory_descriptor {
	uint32_t type;
	uint32_t pad;
	uint64_t physical_start;
	uint64_t virtual_start;
	uint64_t pages;
	uint64_t attribute;
};

/* 4.4.1 EFI_BOOT_SERVICES, up to ExitBootServices */
struct efi_boot_services {
	struct efi_table_header hdr;
	void *raise_tpl, *restore_tpl;
	efi_status (EFIAPI *allocate_pages)(uint32_t type, uint32_t memory_type, uint64_t pages,
					    uint64_t *address);
	efi_status (EFIAPI *free_pages)(uint64_t address, uint64_t pages);
	efi_status (EFIAPI *get_memory_map)(uint64_t *size, struct efi_memory_descriptor *map,
					    uint64_t *key, uint64_t *descriptor_size,
					    uint32_t *descriptor_version);
	efi_status (EFIAPI *allocate_pool)(uint32_t memory_type, uint64_t size, void **buffer);
	efi_status (EFIAPI *free_pool)(void *buffer);
	void *create_event, *set_timer, *wait_for_event, *signal_event, *close_event,
	     *check_event;
	void *install_protocol_interface, *reinstall_protocol_interface,
	     *uninstall_protocol_interface, *handle_protocol, *reserved,
	     *register_protocol_notify, *locate_handle, *locate_device_path,
	     *install_configuration_table;
	void *load_image, *start_image, *exit, *unload_image;
	efi_status (EFIAPI *exit_boot_services)(efi_handle image, uint64_t map_key);
};

/* 4.3 EFI_SYSTEM_TABLE, up to BootServices */
struct efi_system_table {
	struct efi_table_header hdr;
	char16 *firmware_vendor;
	uint32_t firmware_revision;
	efi_handle console_in_handle;
	void *con_in;
	efi_handle console_out_handle;
	struct efi_text_out *con_out;
	efi_handle standard_error_handle;
	struct efi_text_out *std_err;
	void *runtime_services;
	struct efi_boot_services *boot_services;
};

_Static_assert(sizeof(struct efi_table_header) == 24, "EFI_TABLE_HEADER");
_Static_assert(sizeof(struct efi_memory_descriptor) == 40, "EFI_MEMORY_DESCRIPTOR");
_Static_assert(__builtin_offsetof(struct efi_system_table, con_out) == 64, "ConOut");
_Static_assert(__builtin_offsetof(struct efi_system_table, boot_services) == 96, "BootServices");
_Static_assert(__builtin_offsetof(struct efi_boot_services, get_memory_map) == 56, "GetMemoryMap");
_Static_assert(__builtin_offsetof(struct efi_boot_services, exit_boot_services) == 232,
	       "ExitBootServices");

#endif
