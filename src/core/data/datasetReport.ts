import { readExampleLines, DatasetLineError } from "./jsonlReader";
import { checkArithmetic } from "./annotations";
import { formatResult } from "./calculator";
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
    annotationsBadResult: 0,
    wrongArithmetic: [],
    unjudged: [],
  };
  const onError = (e: DatasetLineError): void => {
    report.errorCount++;
    if (report.errors.length < maxErrors) report.errors.push({ line: e.line, message: e.message });
  };
  for await (const { example: ex, line } of readExampleLines(file, { onBadLine: "collect", onError })) {
    report.examples++;
    for (const a of checkArithmetic(ex.rationale)) {
      report.annotations++;
      const annotation = `<<${a.expression}=${a.written}>>`;
      const v = a.verdict;
      if (v.kind === "ok") report.annotationsCorrect++;
      else if (v.kind === "wrong") {
        if (report.wrongArithmetic.length < maxErrors) report.wrongArithmetic.push({ id: ex.id, annotation, expected: v.expected });
      } else {
        // Each annotation the check cannot judge is named, so a person can look at it.
        if (v.kind === "unparseable") report.annotationsUnparseable++;
        else report.annotationsBadResult++;
        const reason = v.kind === "unparseable" ? `outside the calculator's grammar: ${v.reason}` : `the written result "${a.written}" is not a number (the expression gives ${formatResult(v.value)})`;
        if (report.unjudged.length < maxErrors) report.unjudged.push({ line, id: ex.id, annotation, reason });
      }
    }
    if (report.examples % 1000 === 0) options.onProgress?.(report.examples);
  }
  if (report.examples === 0 && report.errorCount === 0) {
    report.errorCount++;
    report.errors.push({ line: 0, message: `${file}: the file has no examples (it is empty or blank)` });
  }
  return report;
}

/** A short human summary, one fact per line. */
export function formatDatasetReport(r: DatasetReport): string {
  const share = r.annotations === 0 ? "n/a" : `${((100 * r.annotationsCorrect) / r.annotations).toFixed(2)}%`;
  const lines = [
    `${r.file}: ${r.examples} examples, ${r.errorCount} bad lines`,
    `calculator annotations: ${r.annotations}, ${r.annotationsCorrect} evaluate to their written result (${share}), ${r.annotationsUnparseable} outside the calculator's grammar, ${r.annotationsBadResult} with a result that is not a number`,
    ...r.errors.map((e) => `  error: ${e.message}`),
    ...r.wrongArithmetic.map((w) => `  wrong arithmetic: ${w.id} ${w.annotation} (calculator says ${w.expected})`),
    ...r.unjudged.map((u) => `  cannot judge: ${r.file}:${u.line} ${u.annotation} (${u.reason})`),
  ];
  const unjudged = r.annotationsUnparseable + r.annotationsBadResult;
  if (unjudged > r.unjudged.length) lines.push(`  … and ${unjudged - r.unjudged.length} more annotations that cannot be judged`);
  if (r.errorCount > r.errors.length) lines.push(`  … and ${r.errorCount - r.errors.length} more bad lines`);
  return lines.join("\n");
}
