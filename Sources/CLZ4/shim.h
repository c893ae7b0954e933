#include <lz4.h>
#define LZ4F_STATIC_LINKING_ONLY
#include <lz4frame.h>
