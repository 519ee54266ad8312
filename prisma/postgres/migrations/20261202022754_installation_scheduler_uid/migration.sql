-- AlterTable
ALTER TABLE "User" ADD COLUMN     "uid" INTEGER;

-- CreateTable
CREATE TABLE "Installation" (
    "id" INTEGER NOT NULL,
    "instanceId" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "Installation_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "SchedulerLease" (
    "name" TEXT NOT NULL,
    "holder" TEXT NOT NULL,
    "expiresAt" TIMESTAMP(3) NOT NULL,
    "heartbeatAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "SchedulerLease_pkey" PRIMARY KEY ("name")
);

-- CreateIndex
CREATE UNIQUE INDEX "Installation_instanceId_key" ON "Installation"("instanceId");

-- CreateIndex
CREATE UNIQUE INDEX "User_uid_key" ON "User"("uid");


-- This installation's id, made once, here.
INSERT INTO "Installation" ("id", "instanceId") VALUES (1, md5(random()::text || clock_timestamp()::text));
