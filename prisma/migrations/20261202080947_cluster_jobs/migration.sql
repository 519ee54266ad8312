-- CreateTable
CREATE TABLE "ClusterJob" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "cluster" TEXT NOT NULL,
    "jobId" TEXT NOT NULL,
    "handle" TEXT NOT NULL,
    "gpus" INTEGER NOT NULL,
    "submittedAt" DATETIME NOT NULL,
    "startedAt" DATETIME,
    "endedAt" DATETIME
);

-- CreateIndex
CREATE INDEX "ClusterJob_handle_idx" ON "ClusterJob"("handle");

-- CreateIndex
CREATE UNIQUE INDEX "ClusterJob_cluster_jobId_key" ON "ClusterJob"("cluster", "jobId");

