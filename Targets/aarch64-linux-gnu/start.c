/* Entry point of the Embedded Swift sprig-edge on Linux: the Swift module
   exports sprig_edge_entry (Sources/sprig-edge/EmbeddedEntry.swift); libc's
   startup calls main, which hands over argc and argv. */
int sprig_edge_entry(int argc, char **argv);

int main(int argc, char **argv) { return sprig_edge_entry(argc, argv); }
