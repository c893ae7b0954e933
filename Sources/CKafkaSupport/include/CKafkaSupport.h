#ifndef CKAFKASUPPORT_H
#define CKAFKASUPPORT_H
#include <stddef.h>
#include <stdint.h>

/// CRC-32C (Castagnoli) of `data`, continuing from `crc` (0 to start). Uses the CPU's crc32
/// instruction when present (checked once at run time), a slicing-by-8 table otherwise.
uint32_t kw_crc32c(uint32_t crc, const void *data, size_t length);
/// The portable path alone, so tests can check both give the same answer.
uint32_t kw_crc32c_portable(uint32_t crc, const void *data, size_t length);
/// 1 when the hardware path is in use.
int kw_crc32c_hardware(void);

/// Names the calling thread (at most 15 bytes are kept), for ps, top and debuggers.
void kw_set_thread_name(const char *name);

#endif
