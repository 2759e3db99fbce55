import * as vscode from "vscode";
import { ReviewPanel, type ReviewTarget } from "../reviewPanel";
import type { ExplorerNode } from "../datasetTree";
import type { ReviewDecision } from "../../shared/runTypes";
import type { Host } from "../host";

type PairArg = { questionId: string; chosenHash: string; rejectedHash: string };

/** The sample a command is about: an explorer node, or `{hash}` from a CodeLens. */
function sampleHash(arg?: ExplorerNode | { hash: string }): string | null {
  return arg && "hash" in arg ? arg.hash : arg?.kind === "sample" ? arg.s.hash : null;
}

/** The review panel and the decisions taken from the explorer, CodeLens and context menus. */
export function registerReviewCommands(host: Host): void {
  const onSample = (make: (hash: string) => ReviewDecision) => (arg?: ExplorerNode | { hash: string }) => host.decide(() => {
    const hash = sampleHash(arg);
    return hash ? make(hash) : null;
  });
  host.command("selfTraining.markCorrect", onSample((hash) => ({ kind: "mark", verdict: "correct", hash })));
  host.command("selfTraining.markWrong", onSample((hash) => ({ kind: "mark", verdict: "wrong", hash })));
  host.command("selfTraining.exclude", onSample((hash) => ({ kind: "exclude-sample", hash })));
  host.command("selfTraining.swapPair", (pair?: PairArg) => {
    if (pair) host.decide(() => ({ kind: "force-pair", questionId: pair.questionId, chosenHash: pair.rejectedHash, rejectedHash: pair.chosenHash }));
  });
  host.command("selfTraining.excludePair", (pair?: PairArg) => {
    if (pair) host.decide(() => ({ kind: "exclude-pair", chosenHash: pair.chosenHash, rejectedHash: pair.rejectedHash }));
  });
  host.command("selfTraining.copyAsJson", async (node?: ExplorerNode) => {
    if (node?.kind === "sample") await vscode.env.clipboard.writeText(JSON.stringify({ questionId: node.q.questionId, question: node.q.question, gold: node.q.gold, ...node.s }, null, 2));
  });
  host.command("selfTraining.reviewRationales", async (node?: ExplorerNode | ReviewTarget) => {
    const ws = host.needWorkspace();
    if (!ws) return;
    let target: ReviewTarget | undefined;
    if (node && "runId" in node && "round" in node) {
      target = { runId: node.runId, round: node.round };
      if ("kind" in node && node.kind === "sample") Object.assign(target, { questionId: node.q.questionId, hash: node.s.hash });
      else if ("kind" in node && node.kind === "question") target.questionId = node.q.questionId;
      else if (!("kind" in node)) Object.assign(target, node);
    }
    await ReviewPanel.show(host.reviewDeps(ws), target);
  });
  host.command("selfTraining.revealRound", async (at?: { runId: string; round: number }) => {
    if (!at) return;
    await vscode.commands.executeCommand("selfTraining.explorer.focus");
    const node = await host.tree.roundNode(at.runId, at.round);
    if (node) await host.view.reveal(node, { select: true, focus: true, expand: true });
  });
}
