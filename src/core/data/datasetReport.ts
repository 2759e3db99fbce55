import { readExamples, DatasetLineError } from "./jsonlReader";
import { checkArithmetic } from "./annotations";
import type { DatasetReport } from "../../shared/datasetTypes";

export type { DatasetReport };

export async function inspectDataset(
  file: string,
  options: { maxErrors?: number; onProgress?: (examples: number) => void } = {},
): Promise<DatasetReport> {
  const maxErrors = options.maxErrors ?? 20;
  const report: DatasetReport = {
    file,
    examples: 0,
    errors: [],
    errorCount: 0,
    annotations: 0,
    annotationsCorrect: 0,
    annotationsUnparseable: 0,
    wrongArithmetic: [],
  };
  const onError = (e: DatasetLineError): void => {
    report.errorCount++;
    if (report.errors.length < maxErrors) report.errors.push({ line: e.line, message: e.message });
  };
  for await (const ex of readExamples(file, { onBadLine: "collect", onError })) {
    report.examples++;
    for (const a of checkArithmetic(ex.rationale)) {
      report.annotations++;
      if (a.verdict.kind === "ok") report.annotationsCorrect++;
      else if (a.verdict.kind === "wrong") {
        if (report.wrongArithmetic.length < maxErrors) {
          report.wrongArithmetic.push({ id: ex.id, annotation: `<<${a.expression}=${a.written}>>`, expected: a.verdict.expected });
        }
      } else report.annotationsUnparseable++;
    }
    if (report.examples % 1000 === 0) options.onProgress?.(report.examples);
  }
  return report;
}

/** A short human summary, one fact per line. */
export function formatDatasetReport(r: DatasetReport): string {
  const share = r.annotations === 0 ? "n/a" : `${((100 * r.annotationsCorrect) / r.annotations).toFixed(2)}%`;
  const lines = [
    `${r.file}: ${r.examples} examples, ${r.errorCount} bad lines`,
    `calculator annotations: ${r.annotations}, ${r.annotationsCorrect} evaluate to their written result (${share}), ${r.annotationsUnparseable} outside the calculator's grammar`,
    ...r.errors.map((e) => `  error: ${e.message}`),
    ...r.wrongArithmetic.map((w) => `  wrong arithmetic: ${w.id} ${w.annotation} (calculator says ${w.expected})`),
  ];
  if (r.errorCount > r.errors.length) lines.push(`  … and ${r.errorCount - r.errors.length} more bad lines`);
  return lines.join("\n");
}
