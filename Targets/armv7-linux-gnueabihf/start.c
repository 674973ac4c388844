/* Entry point of the Embedded Swift sprig-edge on 32-bit ARM Linux (armhf):
   the Swift module exports sprig_edge_entry (Sources/sprig-edge/EmbeddedEntry.swift);
   glibc's startup calls main, which hands over argc and argv. The Swift object
   passes floats in VFP registers, as this file and glibc do (-mfloat-abi=hard). */
int sprig_edge_entry(int argc, char **argv);

int main(int argc, char **argv) { return sprig_edge_entry(argc, argv); }
