/* proxy/fileio.c: see fileio.h. */
#include "proxy/fileio.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *
fileio_read(const char *path, size_t max, size_t *len, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long sz;

	if (f == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if (fseek(f, 0, SEEK_END) != 0 || (sz = ftell(f)) < 0 || (unsigned long)sz > max ||
	    fseek(f, 0, SEEK_SET) != 0) {
		snprintf(err, errlen, "%s: cannot size the file (or over %zu bytes)", path, max);
		goto out;
	}
	buf = malloc((size_t)sz + 1);
	if (buf == NULL || fread(buf, 1, (size_t)sz, f) != (size_t)sz) {
		snprintf(err, errlen, "%s: read failed", path);
		free(buf);
		buf = NULL;
		goto out;
	}
	buf[sz] = '\0';
	*len = (size_t)sz;
out:
	fclose(f);
	return buf;
}
