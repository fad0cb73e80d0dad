/* proxy/fileio.h: reading a whole small file (config, vschema) with a size bound. */
#ifndef RT_PROXY_FILEIO_H
#define RT_PROXY_FILEIO_H

#include <stddef.h>

/* Reads path whole into a new NUL-terminated buffer (caller frees); *len = bytes read.
 * NULL with "<path>: <reason>" in err when it cannot be opened, sized or read, or is
 * larger than max bytes.  Allocates the file's size, not max. */
char *fileio_read(const char *path, size_t max, size_t *len, char *err, size_t errlen);

#endif /* RT_PROXY_FILEIO_H */
