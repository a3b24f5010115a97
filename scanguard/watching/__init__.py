"""Watching a library's folders: the inotify event source, its recursive watch tree, the coalescer that
turns events into settled paths, and the filesystem-type probe (DESIGN §12). A watcher only hints; a
scan stays the truth."""
