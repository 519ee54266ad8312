-- CreateTable
CREATE TABLE "ClusterJob" (
    "id" SERIAL NOT NULL,
    "cluster" TEXT NOT NULL,
    "jobId" TEXT NOT NULL,
    "handle" TEXT NOT NULL,
    "gpus" INTEGER NOT NULL,
    "submittedAt" TIMESTAMP(3) NOT NULL,
    "startedAt" TIMESTAMP(3),
    "endedAt" TIMESTAMP(3),

    CONSTRAINT "ClusterJob_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "ClusterJob_handle_idx" ON "ClusterJob"("handle");

-- CreateIndex
CREATE UNIQUE INDEX "ClusterJob_cluster_jobId_key" ON "ClusterJob"("cluster", "jobId");

