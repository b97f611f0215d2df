/*
 * Replays a fuzz target's stored corpus as an ordinary test, so that
 * `make test` runs every input the fuzzers ever found interesting (under
 * ASan in `make sanitize`). Linked with one target's LLVMFuzzerTestOneInput;
 * the binary is named fuzz_replay_NAME and reads tests/fuzz/corpus/NAME/*
 * (relative to the repository root, where `make test` runs), or the files
 * and folders given as arguments.
 */
#include <dirent.h>
#include <libgen.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	struct stat st;
	uint8_t *buf;
	size_t n;

	if (!f || fstat(fileno(f), &st) != 0) {
		fprintf(stderr, "replay: cannot read %s\n", path);
		if (f)
			fclose(f);
		return -1;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		fclose(f);
		return -1;
	}
	n = fread(buf, 1, (size_t)st.st_size, f);
	fclose(f);
	LLVMFuzzerTestOneInput(buf, n);
	free(buf);
	return 0;
}

static int run_path(const char *path, int *count)
{
	struct stat st;
	DIR *d;
	struct dirent *e;
	char child[4096];

	if (stat(path, &st) != 0) {
		fprintf(stderr, "replay: no corpus at %s\n", path);
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		(*count)++;
		return run_file(path);
	}
	d = opendir(path);
	if (!d)
		return -1;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(child, sizeof child, "%s/%s", path, e->d_name);
		if (run_path(child, count) != 0) {
			closedir(d);
			return -1;
		}
	}
	closedir(d);
	return 0;
}

int main(int argc, char **argv)
{
	char self[4096], dir[4200];
	const char *name;
	int count = 0;

	snprintf(self, sizeof self, "%s", argv[0]);
	name = basename(self);
	if (strncmp(name, "fuzz_replay_", 12) == 0)
		name += 12;
	if (argc > 1) {
		for (int i = 1; i < argc; i++)
			if (run_path(argv[i], &count) != 0)
				return 1;
	} else {
		snprintf(dir, sizeof dir, "tests/fuzz/corpus/%s", name);
		if (run_path(dir, &count) != 0)
			return 1;
	}
	if (count == 0) {
		fprintf(stderr, "replay: empty corpus for %s\n", name);
		return 1;
	}
	printf("replay %s: %d inputs, none crashed\n", name, count);
	printf("%d passed, 0 failed\n", count);
	return 0;
}
