/** A job stopped at the user's request (between steps or batches); what it finished is kept and a rerun resumes. */
export class CancelledError extends Error {
  constructor() {
    super("cancelled");
    this.name = "CancelledError";
  }
}
