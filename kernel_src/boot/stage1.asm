; stage1.asm - 512-byte MBR: load stage 2 with EDD reads and jump to it.
;
; The BIOS loads this sector at 0000:7C00 with DL = boot drive. Stage 1
; checks for int 13h extensions, reads STAGE2_SECTORS sectors from LBA
; STAGE2_LBA to STAGE2_ADDR with one AH=42h call and jumps there with DL
; still holding the drive. The Makefile passes STAGE2_SECTORS (stage 2's
; padded size) with -D.
;
; This file is the MBR's boot code only, MBR_BOOT_CODE_SIZE bytes: the
; image is GPT-partitioned (Makefile, "image"), and sgdisk writes the rest
; of the sector, the protective MBR: one partition entry of type 0xEE from
; LBA 1 over the disk, not active (UEFI 2.10 5.2.3; EDK2 takes a disk as
; GPT only if that entry's boot indicator is 0), and the 0xAA55 signature
; the BIOS checks. The code keeps a BPB-sized gap at its start, as BIOSes
; that boot USB sticks in floppy emulation may patch a BPB-shaped area.
; An error prints a one-letter code (BIOS teletype and COM1), tells QEMU
; through isa-debug-exit, then halts.

bits 16
%include "boot_defs.inc"
%include "exit_codes.inc"

org STAGE1_ADDR

%ifndef STAGE2_SECTORS
%error "STAGE2_SECTORS must be defined (-DSTAGE2_SECTORS=n)"
%endif
%if STAGE2_SECTORS > STAGE2_MAX_SECTORS || STAGE2_SECTORS > 127
%error "stage 2 too large"
%endif

BPB_END              equ 0x5A       ; FAT32 BPB ends at byte 90

stage1_start:
	jmp short stage1_main
	nop
	times BPB_END - ($ - $$) db 0

stage1_main:
	cli
	xor ax, ax
	mov ds, ax
	mov es, ax
	mov ss, ax
	mov sp, REAL_STACK_TOP
	jmp 0:.normalised               ; some BIOSes enter at 07C0:0000
.normalised:
	sti
	cld
	mov [boot_drive], dl
	call check_disk_extensions
	call load_stage2
	mov dl, [boot_drive]
	jmp 0:STAGE2_ADDR

; check_disk_extensions - fail unless int 13h AH=42h (EDD) is available.
check_disk_extensions:
	mov ah, DISK_EXT_CHECK
	mov bx, EDD_CHECK_IN
	mov dl, [boot_drive]
	int BIOS_DISK
	jc .fail
	cmp bx, EDD_CHECK_OUT
	jne .fail
	test cx, EDD_PACKET_ACCESS
	jz .fail
	ret
.fail:
	mov al, ERR_NO_EDD
	jmp fatal

; load_stage2 - one extended read of all of stage 2 (< 127 sectors, < 64 KiB).
load_stage2:
	mov cx, DISK_RETRIES
.retry:
	push cx
	mov si, stage2_dap
	mov dl, [boot_drive]
	mov ah, DISK_EXT_READ
	int BIOS_DISK
	pop cx
	jnc .done
	mov ah, DISK_RESET
	mov dl, [boot_drive]
	int BIOS_DISK
	loop .retry
	mov al, ERR_STAGE2_READ
	jmp fatal
.done:
	ret

; fatal - AL = one-letter code: print it on screen and COM1, exit or halt.
fatal:
	mov dx, COM1_BASE + UART_THR
	out dx, al
	mov ah, BIOS_TELETYPE
	xor bx, bx
	int BIOS_VIDEO
	boot_failed_halt

stage2_dap:
	db DAP_SIZE, 0
	dw STAGE2_SECTORS
	dw STAGE2_ADDR, 0               ; offset, segment
	dq STAGE2_LBA

boot_drive: db 0

%if ($ - $$) > MBR_BOOT_CODE_SIZE
%error "stage 1 overflows the MBR's boot code area"
%endif
	times MBR_BOOT_CODE_SIZE - ($ - $$) db 0
