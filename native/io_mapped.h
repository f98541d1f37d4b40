/*
 * The mapped read path's per-file state: a shared read-only mapping of the file and a table of
 * which of its pages were in the page cache when last looked at (io_mapped.c).
 *
 * A file is mapped the first time a read of it is offered to the path, and unmapped with the
 * file's last reference (the registry calls dsd_io_mapping_free). The engine side of the path
 * (which reads take it, how they are confirmed) is declared in io_backend.h.
 */
#ifndef DSD_IO_MAPPED_H
#define DSD_IO_MAPPED_H

struct dsd_io_mapping;

void dsd_io_mapping_free(struct dsd_io_mapping *m);

#endif
