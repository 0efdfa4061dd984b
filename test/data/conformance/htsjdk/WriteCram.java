// Writes a CRAM (and its .crai) with htsjdk, for slicefs's conformance tests (see README.md).
// Picard writes CRAM with htsjdk's defaults and indexes it as .bai; this also sets the slice
// sizes (many small slices, multi-reference slices) and writes the .crai with htsjdk's indexer.
//
//   javac -cp /usr/share/java/htsjdk.jar WriteCram.java
//   java -cp /usr/share/java/htsjdk.jar:. WriteCram IN.sam REF.fa OUT.cram READS_PER_SLICE SLICES_PER_CONTAINER MIN_SINGLE_REF_SLICE
//   java -cp /usr/share/java/htsjdk.jar:. WriteCram index IN.cram      (writes IN.cram.crai)
import htsjdk.samtools.*;
import htsjdk.samtools.cram.ref.ReferenceSource;
import htsjdk.samtools.cram.structure.CRAMEncodingStrategy;
import htsjdk.samtools.seekablestream.SeekableFileStream;
import java.io.*;
import java.nio.file.Paths;

public class WriteCram {
    public static void main(String[] args) throws IOException {
        if (args[0].equals("index")) {
            writeCrai(new File(args[1]));
            return;
        }
        File in = new File(args[0]);
        File ref = new File(args[1]);
        File out = new File(args[2]);
        CRAMEncodingStrategy strategy = new CRAMEncodingStrategy()
                .setMinimumSingleReferenceSliceSize(Integer.parseInt(args[5]))
                .setReadsPerSlice(Integer.parseInt(args[3]))
                .setSlicesPerContainer(Integer.parseInt(args[4]));
        SamReader reader = SamReaderFactory.makeDefault().validationStringency(ValidationStringency.SILENT).open(in);
        SAMFileHeader header = reader.getFileHeader().clone();
        header.setSortOrder(SAMFileHeader.SortOrder.coordinate);
        try (OutputStream os = new BufferedOutputStream(new FileOutputStream(out));
             CRAMFileWriter writer = new CRAMFileWriter(strategy, os, null, false, new ReferenceSource(Paths.get(ref.getPath())), header, out.getName())) {
            for (SAMRecord r : reader) writer.addAlignment(r);
        }
        reader.close();
        writeCrai(out);
    }

    static void writeCrai(File cram) throws IOException {
        try (SeekableFileStream s = new SeekableFileStream(cram);
             OutputStream os = new BufferedOutputStream(new FileOutputStream(cram.getPath() + ".crai"))) {
            CRAMCRAIIndexer.writeIndex(s, os);
        }
    }
}
